"""Training end to end on CPU: a real ``synth build``, ``synth train``, ``synth pairs``, ``synth eval``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_trainer_shards import write_dataset, write_real_folder

from synthface.cli import main
from synthface.errors import SynthError
from synthface.trainer import export
from synthface.trainer.config import TrainConfig
from synthface.trainer.train import train


def synth(*args) -> str:
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """400 images from a real ``synth build`` (default generator; 32x32 to keep CPU time down), and a
    held-out pairs set drawn with the same generator and seed (``--like``) from classes 10^6 up."""
    root = tmp_path_factory.mktemp("e2e")
    data, pairs = root / "syn", root / "pairs"
    synth("build", "--ids", 50, "--per-id", 8, "--out", data, "--workers", 0, "--image-size", 32,
          "--shard-size", 100, "--seed", 5, "--no-progress")
    synth("pairs", "--out", pairs, "--ids", 20, "--images-per-id", 5, "--same", 100, "--different", 100,
          "--like", data)
    return data, pairs


def test_train_end_to_end_loss_falls_and_heldout_verification_beats_chance(built, tmp_path):
    data, pairs = built
    out = tmp_path / "run"
    # A smaller scale and margin than the reference (64, 0.5) let 50 classes converge in ~100 steps.
    # Augmentation off: this checks that the loop learns at all, on 32x32 images the augmentation is not sized for.
    synth("train", "--config", "tiny", "--data", data, "--out", out, "--epochs", 8, "--image-size", 32, "--augment", "off",
          "--scale", 32, "--margin", 0.3, "--val", pairs, "--seed", 1)
    rows = [line.split(",") for line in (out / "log.csv").read_text().splitlines()[1:]]
    epoch_rows = [r for r in rows if r[-1]]  # the per-epoch rows carry the epoch time
    losses = [float(r[2]) for r in epoch_rows]
    assert len(losses) == 8 and losses[-1] < 0.85 * losses[0], losses
    val = [float(r[6]) for r in epoch_rows]
    assert val[-1] >= 0.72, val  # chance is 0.5; an untrained network scores about 0.6
    assert (out / "tb").is_dir() and (out / "checkpoint.pt").is_file()
    # The exported TorchScript model evaluates to the same accuracy as the last validation ...
    report = tmp_path / "eval.json"
    text = synth("eval", out / "backbone.ts", "--pairs", pairs, "--json", report)
    res = json.loads(report.read_text())[0]
    assert "accuracy" in text and res["accuracy"] == pytest.approx(val[-1], abs=1e-9)
    # ... and so does the plain state dict with its sidecar.
    synth("eval", out / "backbone.pth", "--pairs", pairs, "--json", report)
    assert json.loads(report.read_text())[0]["accuracy"] == pytest.approx(val[-1], abs=1e-9)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    return write_dataset(root / "syn", classes=6, per_class=4, shards=2, size=(32, 32)), \
        write_real_folder(root / "real", ids=3, per_id=3)


def _cfg(syn, out, **kw) -> TrainConfig:
    base = {"data": syn, "out": str(out), "network": "mbf", "image_size": 32, "batch_size": 4, "epochs": 1,
            "max_steps": 1, "workers": 0, "shuffle_buffer": 8, "amp": False, "log_every": 1, "export": False}
    return TrainConfig.load(None, **{**base, **kw})


def test_domain_mixup_runs_and_real_classes_follow_synthetic(small, tmp_path):
    syn, real = small
    summary = train(_cfg(syn, tmp_path / "dm", real=real, psi="0.5"), progress=False)
    assert summary["synthetic_classes"] == 6 and summary["num_classes"] == 9
    ckpt = torch.load(tmp_path / "dm" / "checkpoint.pt", weights_only=False)
    assert ckpt["head"]["weight"].shape[0] == 9
    rows = (tmp_path / "dm" / "log.csv").read_text().splitlines()
    assert any(r.split(",")[5] == "0.5" for r in rows[1:])  # psi logged
    # Real-only baseline: the real classes alone.
    summary = train(_cfg(None, tmp_path / "real", real=real, mode="real"), progress=False)
    assert summary["num_classes"] == 3
    # --no-dm ignores the real data.
    summary = train(_cfg(syn, tmp_path / "syn", real=real, mode="syn"), progress=False)
    assert summary["num_classes"] == 6


@pytest.fixture(scope="module")
def trained(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    train(_cfg(small[0], out, export=True), progress=False)
    return out


def test_resume_continues_and_refuses_another_architecture(small, trained, tmp_path):
    syn, _ = small
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    summary = train(_cfg(syn, out, epochs=2), resume=str(out), progress=False)
    assert len(summary["epoch_loss"]) == 1  # only epoch 2 ran
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 2
    with pytest.raises(SynthError, match="network 'mbf' but this run has 'r18'"):
        train(_cfg(syn, tmp_path / "other", network="r18", epochs=3), resume=str(out), progress=False)
    # A bare state dict of one network given to eval as another: one line, not a traceback.
    with pytest.raises(SynthError, match="do not fit this network") as exc:
        export.load_backbone(str(out / "backbone.pth"), network="r18")
    assert "\n" not in str(exc.value)


def test_cli_bad_inputs_are_one_line_errors(small, tmp_path):
    syn, _ = small
    runner = CliRunner()
    cases = [
        (["train", "--data", str(tmp_path / "none-{000000..000003}.tar"), "--out", str(tmp_path / "x")], "no shard matches"),
        (["train", "--data", syn, "--real", str(tmp_path), "--out", str(tmp_path / "y"), "--network", "mbf"],
         "has no images"),
        (["train", "--data", syn, "--no-dm", "--real-only"], "exclude each other"),
        (["eval", str(tmp_path / "missing.ts"), "--pairs", str(tmp_path)], "does not exist"),
        (["eval", str(tmp_path / "model.onnx"), "--pairs", str(tmp_path)], "is an ONNX export"),
    ]
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    for args, message in cases:
        res = runner.invoke(main, args)
        assert res.exit_code == 2, (args, res.output)
        lines = res.output.strip().splitlines()
        assert message in lines[-1] and lines[-1].startswith("error: "), res.output


def test_export_formats_agree(trained):
    out = trained
    meta = json.loads((out / "backbone.json").read_text())
    assert meta["network"] == "mbf" and meta["image_size"] == [32, 32]
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    ts = torch.jit.load(str(out / "backbone.ts"))
    sd, size = export.load_backbone(str(out / "backbone.pth"))
    ck, _ = export.load_backbone(str(out / "checkpoint.pt"))
    assert size == (32, 32)
    with torch.no_grad():
        assert torch.allclose(ts(x), sd(x), atol=1e-5) and torch.allclose(ck(x), sd(x), atol=1e-6)
    # onnx and onnxruntime come with the test extra: the ONNX file must exist and give the same embeddings.
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out / "backbone.onnx"), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        assert np.allclose(onnx_out, sd(x).numpy(), atol=1e-4)
    assert onnx_out.shape == (3, meta["embedding_size"])


def test_pairs_are_unique_balanced_and_identity_disjoint_across_folds():
    from synthface.pipeline.pairs import choose_pairs

    same, diff = choose_pairs(ids=40, per_id=4, same=60, different=80, folds=10, seed=3, offset=10**6)
    assert len(same) == 60 and len(diff) == 80
    assert len(set(same)) == 60 and len(set(diff)) == 80
    assert choose_pairs(40, 4, 60, 80, 10, 3, 10**6) == (same, diff)  # deterministic
    fold_ids = []
    for k in range(10):
        ids = {p[0] for p in same[6 * k:6 * k + 6]} | {n for p in diff[8 * k:8 * k + 8] for n in (p[0], p[2])}
        fold_ids.append(ids)
    for a in range(10):
        for b in range(a + 1, 10):
            assert not fold_ids[a] & fold_ids[b]
    assert all(int(p[0][2:]) >= 10**6 for p in same) and all(p[0] != p[2] for p in diff)
    assert all(1 <= p[1] < p[2] <= 4 for p in same)
    with pytest.raises(SynthError, match="multiples of --folds"):
        choose_pairs(40, 4, 61, 80, 10, 3)
    with pytest.raises(SynthError, match="raise --ids or --images-per-id"):
        choose_pairs(20, 2, 100, 100, 10, 3)


def test_lr_schedules():
    from synthface.trainer.train import lr_factor

    step = TrainConfig.load(None, data="x", epochs=40, lr_steps=[24, 30, 36], warmup_epochs=1)
    assert lr_factor(0, 10, step) == pytest.approx(0.1) and lr_factor(9, 10, step) == 1.0
    assert lr_factor(239, 10, step) == 1.0 and lr_factor(240, 10, step) == pytest.approx(0.1)
    assert lr_factor(365, 10, step) == pytest.approx(1e-3)
    cos = TrainConfig.load(None, data="x", epochs=4, schedule="cosine")
    assert lr_factor(0, 10, cos) == 1.0 and lr_factor(20, 10, cos) == pytest.approx(0.5)
    assert lr_factor(40, 10, cos) == pytest.approx(0.0, abs=1e-12)
