"""End-to-end builds on a real local Ray instance, read back with tarfile, ``tar`` and webdataset."""

from __future__ import annotations

import json
import subprocess
import tarfile

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from synthface.generator.sampler import Sampler
from synthface.pipeline import plan, schema, writer
from synthface.pipeline.config import BuildConfig, resolve
from tests.conftest import SHAPES, shard_hashes, synth

# The product path: the default generator (morphable), through the installed command line.
ARGS = ["--ids", "7", "--per-id", "5", "--shard-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    """The same config built by one and by two Ray workers."""
    base = tmp_path_factory.mktemp("builds")
    outs = {}
    for workers in (1, 2):
        out = base / f"w{workers}"
        proc = synth("build", *ARGS, "--workers", workers, "--out", out)
        assert proc.returncode == 0, f"{workers} workers: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert "build complete" in proc.stdout and "images/s" in proc.stdout
        outs[workers] = out
    return outs


def test_worker_count_does_not_change_bytes(two_builds):
    one, two = shard_hashes(two_builds[1]), shard_hashes(two_builds[2])
    assert len(one) == 5 and one == two
    m1, m2 = (json.loads((two_builds[w] / "manifest.json").read_text()) for w in (1, 2))
    assert m1 == m2
    assert (two_builds[1] / "index.parquet").read_bytes() == (two_builds[2] / "index.parquet").read_bytes()
    # Both workers rendered something in the two-worker build.
    workers = {json.loads(p.read_text())["worker"].split(".")[0] for p in two_builds[2].glob("*.stats.json")}
    assert workers == {"w0", "w1"}


def test_manifest_describes_the_build(two_builds):
    out = two_builds[2]
    man = json.loads((out / "manifest.json").read_text())
    assert man["complete"] and man["schema"] == schema.SCHEMA_VERSION
    assert man["num_classes"] == 7 and man["num_samples"] == 35 and man["num_shards"] == 5
    assert man["pattern"] == "synth-{000000..000004}.tar"
    assert man["generator"]["name"] == "morphable" and man["config"]["generator"] == "morphable"
    assert {"synthface", "numpy", "numba", "torch", "pillow", "simplejpeg", "webdataset", "ray"} <= set(man["versions"])
    assert BuildConfig.from_dict(man["config"]).to_dict() == man["config"]
    for entry in man["shards"]:
        data = (out / entry["name"]).read_bytes()
        assert entry["bytes"] == len(data) and entry["count"] == (8 if entry["index"] < 4 else 3)
        stats = json.loads((out / schema.stats_name("synth", entry["index"])).read_text())
        assert stats["sha256"] == entry["sha256"] and stats["count"] == entry["count"] and stats["node"]
        assert set(stats["timing"]) == {"sample", "render", "encode", "write"}


def test_shards_read_with_tar_tarfile_and_webdataset(two_builds):
    out = two_builds[2]
    man = json.loads((out / "manifest.json").read_text())
    listed = subprocess.run(["tar", "-tf", str(out / "synth-000000.tar")], capture_output=True, text=True, check=True)
    names = listed.stdout.split()
    assert len(names) == 24 and names[:3] == [names[0].split(".")[0] + e for e in (".jpg", ".cls", ".json")]
    with tarfile.open(out / "synth-000000.tar") as tar:
        members = tar.getmembers()
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}
    urls = str(out / man["pattern"])
    seen, classes_per_shard = [], {}
    for sample in wds.WebDataset(urls, shardshuffle=False).decode("rgb"):
        meta = schema.parse_metadata(sample["json"])
        assert sample["jpg"].shape == (112, 112, 3)
        assert int(sample["cls"]) == meta["label"] == max(meta["soft_label"], key=lambda cw: cw[1])[0]
        assert abs(sum(w for _, w in meta["soft_label"]) - 1.0) < 1e-6
        assert meta["key"] == sample["__key__"] == schema.sample_key(meta["class"], meta["image"])
        seen.append((meta["class"], meta["image"]))
        classes_per_shard.setdefault(sample["__url__"], set()).add(meta["class"])
    assert sorted(seen) == [(c, k) for c in range(7) for k in range(5)]
    # Interleaved plan: a full shard of 8 holds at least 6 distinct identities of 7.
    assert min(len(v) for u, v in classes_per_shard.items() if not u.endswith("4.tar")) >= 6


def test_index_matches_shards(two_builds):
    out = two_builds[2]
    table = pq.read_table(out / "index.parquet")
    assert tuple(table.column_names) == schema.INDEX_COLUMNS and table.num_rows == 35
    rows = table.to_pylist()
    by_key = {r["key"]: r for r in rows}
    for sample in wds.WebDataset(str(out / "synth-{000000..000004}.tar"), shardshuffle=False):
        meta = orjson.loads(sample["json"])
        row = by_key[sample["__key__"]]
        assert row["shard"] == sample["__url__"].rsplit("/", 1)[-1]
        assert [[s["class"], pytest.approx(s["weight"])] for s in row["soft_label"]] == meta["soft_label"]
        assert row["label"] == meta["label"] and row["partner"] == meta["partner"] and row["phi"] == meta["phi"]
        assert row["yaw"] == pytest.approx(meta["pose_deg"]["yaw"], abs=1e-3)


def test_verify_passes_then_names_a_corrupt_shard(two_builds, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(two_builds[1], out)
    ok = synth("verify", out, "--no-progress")
    assert ok.returncode == 0 and "ok: 5 shards, 35 samples" in ok.stdout, ok.stderr
    shard = out / "synth-000003.tar"
    data = bytearray(shard.read_bytes())
    data[1500] ^= 0xFF  # inside the first image
    shard.write_bytes(bytes(data))
    (out / "synth-000001.tar").unlink()
    bad = synth("verify", out, "--no-progress")
    assert bad.returncode != 0
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 2 bad") and "synth-000003.tar" in last and "synth-000001.tar" in last
    assert "BAD synth-000003.tar: sha256" in bad.stderr


def test_plan_is_a_pure_function_of_config():
    cfg = BuildConfig(ids=10, per_id=3, shard_size=4, generator=SHAPES, seed=5)
    pairs = [tuple(p) for s in range(cfg.num_shards) for p in zip(*plan.shard_samples(cfg, s))]
    assert sorted(pairs) == [(c, k) for c in range(10) for k in range(3)]
    assert pairs == [tuple(p) for p in zip(*plan.samples(cfg, 0, cfg.num_samples))]
    other = [tuple(p) for p in zip(*plan.samples(cfg.with_(seed=6), 0, cfg.num_samples))]
    assert sorted(other) == sorted(pairs) and other != pairs
    assert [len(plan.shard_samples(cfg, s)[0]) for s in range(cfg.num_shards)] == [4] * 7 + [2]


def test_tar_bytes_are_reproducible_and_standard(tmp_path):
    def make():
        tar = writer.TarBuilder()
        tar.add("00000001_00002.cls", b"1")
        tar.add("00000001_00002.json", b'{"a": 1}' * 100)
        return tar.getvalue()

    data = make()
    assert data == make() and len(data) % 512 == 0
    # Headers are exactly what tarfile writes for the same fixed member attributes.
    info = tarfile.TarInfo("00000001_00002.json")
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 800, 0, 0o644, 0, 0, "", ""
    assert data[1024:1536] == info.tobuf(format=tarfile.USTAR_FORMAT)
    path = tmp_path / "t.tar"
    path.write_bytes(data)
    with tarfile.open(path) as tar:
        assert [(m.name, m.size) for m in tar] == [("00000001_00002.cls", 1), ("00000001_00002.json", 800)]
        assert tar.extractfile("00000001_00002.json").read() == b'{"a": 1}' * 100


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_other_formats_in_process(tmp_path, fmt):
    """--workers 0 runs without Ray; png/webp go through PIL and decode back to the right size."""
    out = tmp_path / fmt
    proc = synth("build", "--ids", "3", "--per-id", "2", "--shard-size", "4", "--generator", SHAPES, "--format", fmt,
                 "--image-size", "64x48", "--workers", "0", "--no-progress", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert synth("verify", out, "--no-progress").returncode == 0
    sample = next(iter(wds.WebDataset(str(out / "synth-{000000..000001}.tar"), shardshuffle=False).decode("rgb")))
    assert sample[fmt].shape == (64, 48, 3)


def test_recipe_flags_override(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("description: test\nids: 50\nper_id: 2\nshard_size: 10\nsampling:\n  mixup: off\n  factors: pose\n")
    cfg = resolve(str(recipe), {"per_id": 3, "ids": None}, {"mixup": "paper"})
    assert (cfg.ids, cfg.per_id, cfg.shard_size) == (50, 3, 10)
    assert cfg.sampling.factors == "pose" and cfg.sampling.mixup is not None
    assert resolve("syn_10k_50_im", {}, {}).num_shards == 500
    assert resolve("syn_10k_50", {}, {}).sampling.mixup is None


def test_index_rows_come_from_the_sampler_alone():
    from synthface.pipeline.storage import Storage
    from synthface.pipeline.worker import ShardWorker

    cfg = BuildConfig(ids=5, per_id=2, shard_size=4, generator=SHAPES)
    worker = ShardWorker(cfg.to_dict(), Storage("memory://idx"), batch_size=3)
    rows = worker.index_rows(1)
    cls, img = plan.shard_samples(cfg, 1)
    batch = Sampler(cfg.sampling, 5, 0).batch(zip(cls, img))
    assert list(rows["class"]) == list(cls) and np.array_equal(rows["phi"], batch.phi)
    built = worker.build(1)
    assert {k: list(v) for k, v in built["index"].items()} == {k: list(v) for k, v in rows.items()}
