"""Reading the release formats without TensorFlow, and `synth convert-weights` end to end."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from synthface.cli import main as synth
from synthface.errors import SynthError
from synthface.generator.discofacegan import convert, decoders, legacy
from synthface.generator.discofacegan.networks import GeneratorConfig
from synthface.generator.discofacegan.tfcheckpoint import Checkpoint

from tests import discofacegan_files as testing

REPO = Path(__file__).resolve().parents[1]
REAL_VAE = REPO.parent / "shared" / "reference" / "discofacegan-vae-weights"
needs_real_vae = pytest.mark.skipif(
    not (REAL_VAE / "exp" / "stage1_epoch_395.ckpt.index").is_file(),
    reason="DiscoFaceGAN's released decoder checkpoints are not at ../shared/reference/discofacegan-vae-weights",
)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Stand-ins for the release: a (G, D, Gs) pickle and the four decoder checkpoints, random values."""
    root = tmp_path_factory.mktemp("release")
    mapping, synthesis = testing.random_generator_variables(seed=3)
    testing.write_network_pickle(root / "network-snapshot-020126.pkl", mapping, synthesis)
    dec_vars = testing.random_decoder_checkpoints(root / "vae" / "weights", seed=4)
    return root, mapping, synthesis, dec_vars


@needs_real_vae
def test_reads_the_released_decoder_checkpoints():
    for name, (z, hidden, out) in decoders.DECODERS.items():
        ckpt = Checkpoint(REAL_VAE / name / convert.CHECKPOINT)
        for local, shape in decoders.variable_specs(name).items():
            assert ckpt.entries[decoders.checkpoint_name(name, local)].shape == shape
    for name in ("exp", "gamma", "rot"):
        ckpt = Checkpoint(REAL_VAE / name / convert.CHECKPOINT)
        values = {k: ckpt.read(decoders.checkpoint_name(name, k)) for k in decoders.variable_specs(name)}
        assert all(np.isfinite(v).all() and v.dtype == np.float32 for v in values.values())
        assert values["fc0/kernel"].std() > 0.01  # trained weights, not zeros
        out = decoders.CoeffDecoder.from_tensors(values)(np.zeros((2, decoders.DECODERS[name][0]), np.float32))
        assert out.shape == (2, decoders.DECODERS[name][2])


@needs_real_vae
def test_default_lighting_prior_is_the_released_lighting_decoders():
    """The morphable generator's lighting table reproduces what DiscoFaceGAN's FFHQ-trained decoder emits."""
    from synthface.generator.sampler import LIGHT_CHOL, LIGHT_MEAN

    decoder = decoders.CoeffDecoder.from_tensors(convert.read_decoder(REAL_VAE, "gamma"))
    z = np.random.default_rng(0).standard_normal((50_000, decoder.z_size), dtype=np.float32)
    sh = decoder(z).astype(np.float64).reshape(-1, 3, 9).mean(axis=1)
    chol = np.zeros((9, 9))
    for k, row in enumerate(LIGHT_CHOL):
        chol[k, : k + 1] = row
    np.testing.assert_allclose(sh.mean(axis=0), LIGHT_MEAN, atol=0.003)
    np.testing.assert_allclose(np.cov(sh.T), chol @ chol.T, atol=0.001)
    assert (sh[:, 1] < 0).mean() > 0.9  # light from above


@needs_real_vae
def test_identity_checkpoint_without_its_data_file_names_the_missing_file():
    ckpt = Checkpoint(REAL_VAE / "id" / convert.CHECKPOINT)
    assert ckpt.entries["id/stage1/decoder/x_hat/kernel"].shape == (512, 160)
    with pytest.raises(SynthError, match=r"data file .*data-00000-of-00001 not found"):
        ckpt.read("id/stage1/decoder/x_hat/kernel")


@needs_real_vae
def test_checkpoint_writer_round_trips_real_values(tmp_path):
    src = Checkpoint(REAL_VAE / "exp" / convert.CHECKPOINT)
    tensors = {k: src.read(k) for k in src.keys() if src.entries[k].dtype == np.float32}
    testing.write_tf_checkpoint(tmp_path / "copy.ckpt", tensors)
    back = Checkpoint(tmp_path / "copy.ckpt")
    assert back.keys() == sorted(tensors)
    for k, v in tensors.items():
        np.testing.assert_array_equal(back.read(k), v)


def test_checkpoint_reader_rejects_non_checkpoints(tmp_path):
    (tmp_path / "x.ckpt.index").write_bytes(b"not a table at all" * 4)
    with pytest.raises(SynthError, match="bad table magic"):
        Checkpoint(tmp_path / "x.ckpt")
    with pytest.raises(SynthError, match="not found"):
        Checkpoint(tmp_path / "missing.ckpt")


def test_pickle_loads_without_tensorflow_and_keeps_the_layout(release):
    root, mapping, synthesis, _ = release
    nets = legacy.load_network_pickle(root / "network-snapshot-020126.pkl")
    assert [n.name for n in nets] == ["G", "D", "Gs"]
    gs = legacy.generator_of(nets)
    assert set(gs.variables) == {"lod", "dlatent_avg"}
    syn = gs.components["synthesis"]
    assert "ToRGB_lod6/weight" in syn.variables  # the unused progressive-growing outputs are there
    np.testing.assert_array_equal(syn.variables["128x128/Conv0_up/weight"], synthesis["128x128/Conv0_up/weight"])
    np.testing.assert_array_equal(gs.components["mapping"].variables["Dense0/weight"], mapping["Dense0/weight"])


def test_unpickler_refuses_anything_but_network_state(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(SynthError, match="refusing to load"):
        legacy.load_network_pickle(path)


def test_arrays_pickled_by_numpy_1_resolve(tmp_path):
    """The release was pickled with numpy 1.x, whose arrays reference numpy.core.multiarray."""
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    blob = pickle.dumps({"a": arr}, protocol=2)  # GLOBAL opcodes are plain text at protocol 2
    blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in blob
    import io

    np.testing.assert_array_equal(legacy._Unpickler(io.BytesIO(blob)).load()["a"], arr)


def test_convert_weights_cli_round_trip(release, tmp_path):
    root, mapping, synthesis, dec_vars = release
    out = tmp_path / "dfg.safetensors"
    result = CliRunner().invoke(
        synth,
        ["convert-weights", "--pickle", str(root / "network-snapshot-020126.pkl"), "--vae-dir",
         str(root / "vae" / "weights"), "--out", str(out), "--average-samples", "64"],
    )
    assert result.exit_code == 0, result.output
    w = convert.load(out)
    assert w.cfg == GeneratorConfig()
    for k, v in mapping.items():
        np.testing.assert_array_equal(w.mapping[k], v)
    for k, v in w.synthesis.items():
        np.testing.assert_array_equal(v, synthesis[k])
    assert "ToRGB_lod1/weight" not in w.synthesis and "lod" not in w.synthesis
    for name, variables in dec_vars.items():
        for k, v in variables.items():
            idx = decoders.LAYERS.index(k.split("/")[0])
            arr = w.decoders[name].kernels[idx] if k.endswith("kernel") else w.decoders[name].biases[idx]
            np.testing.assert_array_equal(arr, v)
    assert w.average_w_id.shape == (14, 512)
    assert np.all(w.average_w_id == w.average_w_id[0])  # W is broadcast to every layer
    assert '"samples": 64' in w.metadata["average_w_id"]
    # the stored average is the reference computation: reproduce it independently
    rs = np.random.RandomState(1)
    ws = []
    for _ in range(64):
        lats = rs.normal(size=[1, 179])
        noise = rs.normal(size=[1, 32])
        lam = w.decoders["id"](lats[:, :128].astype(np.float32))
        x = np.concatenate([lam, np.zeros((1, 94), np.float32), noise.astype(np.float32)], axis=1)
        for i in range(8):
            wt, b = mapping[f"Dense{i}/weight"].astype(np.float64), mapping[f"Dense{i}/bias"].astype(np.float64)
            x = x @ (wt * np.sqrt(2) / np.sqrt(wt.shape[0]) * 0.01) + b * 0.01
            x = np.where(x >= 0, x, 0.2 * x)
        ws.append(x)
    np.testing.assert_allclose(w.average_w_id[0], np.concatenate(ws).mean(0), rtol=1e-4, atol=1e-3)


def test_average_is_independent_of_chunking(release):
    root, mapping, synthesis, dec_vars = release
    to_t = lambda d: {k: torch.from_numpy(np.asarray(v)) for k, v in d.items()}
    from synthface.generator.discofacegan.networks import Generator

    g = Generator(GeneratorConfig(), to_t(mapping), to_t(synthesis))
    d = decoders.CoeffDecoder.from_tensors(dec_vars["id"])
    a = convert.average_w_id(g, d, samples=7, chunk=3)
    b = convert.average_w_id(g, d, samples=7, chunk=7)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-4)


def test_precomputed_average_file_is_used(release, tmp_path):
    root, *_ = release
    avg = np.arange(14 * 512, dtype=np.float64).reshape(14, 512) / 1000
    np.savetxt(tmp_path / "avg.txt", avg)
    out = convert.convert(root / "network-snapshot-020126.pkl", root / "vae" / "weights", tmp_path / "a.safetensors",
                          average_file=tmp_path / "avg.txt")
    np.testing.assert_allclose(convert.load(out).average_w_id, avg.astype(np.float32))


def _pickle_with(tmp_path, edit_mapping=None, edit_synthesis=None):
    mapping, synthesis = testing.random_generator_variables(seed=5)
    if edit_mapping:
        edit_mapping(mapping)
    if edit_synthesis:
        edit_synthesis(synthesis)
    path = tmp_path / "net.pkl"
    testing.write_network_pickle(path, mapping, synthesis)
    return path


def test_missing_generator_variable_is_named(release, tmp_path):
    root, *_ = release
    path = _pickle_with(tmp_path, edit_synthesis=lambda s: s.pop("64x64/Conv1/StyleMod/weight"))
    result = CliRunner().invoke(synth, ["convert-weights", "--pickle", str(path), "--vae-dir",
                                        str(root / "vae" / "weights"), "--out", str(tmp_path / "o.safetensors")])
    assert result.exit_code == 2
    assert "error:" in result.output and "G_synthesis/64x64/Conv1/StyleMod/weight is missing" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o.safetensors").exists()


def test_misshaped_generator_variable_is_named(release, tmp_path):
    root, *_ = release

    def bad(m):
        m["Dense0/weight"] = m["Dense0/weight"][:285]

    path = _pickle_with(tmp_path, edit_mapping=bad)
    with pytest.raises(SynthError, match=r"G_mapping/Dense0/weight has shape \[285, 512\], expected \[286, 512\]"):
        convert.convert(path, root / "vae" / "weights", tmp_path / "o.safetensors", average_samples=2)


def test_missing_and_misshaped_decoder_variables_are_named(tmp_path):
    vae = tmp_path / "vae"
    testing.random_decoder_checkpoints(vae)
    rng = np.random.default_rng(0)
    tensors = {decoders.checkpoint_name("gamma", k): rng.standard_normal(s).astype(np.float32)
               for k, s in decoders.variable_specs("gamma").items()}
    tensors.pop("gamma/stage1/decoder/x_hat/bias")
    testing.write_tf_checkpoint(vae / "gamma" / convert.CHECKPOINT, tensors)
    with pytest.raises(SynthError, match="gamma/stage1/decoder/x_hat/bias is missing"):
        convert.read_decoders(vae)
    tensors["gamma/stage1/decoder/x_hat/bias"] = np.zeros(26, np.float32)
    testing.write_tf_checkpoint(vae / "gamma" / convert.CHECKPOINT, tensors)
    with pytest.raises(SynthError, match=r"gamma/stage1/decoder/x_hat/bias has shape \[26\], expected \[27\]"):
        convert.read_decoders(vae)


def test_loading_a_foreign_or_incomplete_file_fails_clearly(release, tmp_path):
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(SynthError, match="not a converted DiscoFaceGAN file"):
        convert.load(tmp_path / "other.safetensors")
    with pytest.raises(SynthError, match="synth convert-weights"):
        convert.load(tmp_path / "absent.safetensors")
