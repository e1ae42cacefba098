"""``synth verify`` checks everything a build promises (shards, metadata, the index), and a re-run
repairs what it can: a damaged index is written again."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile

import pytest

from tests.conftest import SHAPES, synth, tree_hashes

BASE = ["--ids", "4", "--per-id", "3", "--shard-size", "5", "--generator", SHAPES, "--no-progress", "--workers", "0"]


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("builds")
    for seed in (0, 1):
        proc = synth("build", *BASE, "--seed", seed, "--out", root / f"seed{seed}")
        assert proc.returncode == 0, proc.stderr
    return root / "seed0", root / "seed1"


def _copy(src, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(src, out)
    return out


def _bad(out) -> str:
    proc = synth("verify", out, "--no-progress")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "bad file" in last, proc.stderr
    return proc.stderr


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped byte", "garbage", "empty", "another build's index"])
def test_a_damaged_index_is_found_by_verify_and_written_again_by_a_rerun(builds, tmp_path, damage):
    out = _copy(builds[0], tmp_path)
    original = (out / "index.parquet").read_bytes()
    index = out / "index.parquet"
    if damage == "flipped byte":
        _flip(index)
    elif damage == "garbage":
        index.write_bytes(b"PAR1 this is not parquet at all PAR1")
    elif damage == "empty":
        index.write_bytes(b"")
    else:
        index.write_bytes((builds[1] / "index.parquet").read_bytes())
    assert "BAD index.parquet" in _bad(out)
    again = synth("build", *BASE, "--out", out)
    assert again.returncode == 0 and "index.parquet written again" in again.stdout, again.stdout + again.stderr
    assert index.read_bytes() == original
    assert synth("verify", out, "--no-progress").returncode == 0


def test_a_directory_in_place_of_the_index_is_reported_and_left_alone(builds, tmp_path):
    out = _copy(builds[0], tmp_path)
    (out / "index.parquet").unlink()
    (out / "index.parquet").mkdir()
    (out / "index.parquet" / "part-0.parquet").write_bytes(b"someone's")
    assert "BAD index.parquet: cannot be read" in _bad(out)
    before = tree_hashes(out)
    proc = synth("build", *BASE, "--out", out)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "is a directory" in lines[0], proc.stderr
    assert tree_hashes(out) == before


def test_index_rows_must_be_the_shards_samples(builds, tmp_path):
    """Even with the manifest's sha256 edited to match, another build's index is caught by its rows."""
    out = _copy(builds[0], tmp_path)
    other = (builds[1] / "index.parquet").read_bytes()
    (out / "index.parquet").write_bytes(other)
    man = json.loads((out / "manifest.json").read_text())
    man["index_sha256"], man["index_bytes"] = hashlib.sha256(other).hexdigest(), len(other)
    (out / "manifest.json").write_text(json.dumps(man))
    assert "does not match sample" in _bad(out)


def test_an_unfinished_build_fails_verification(builds, tmp_path):
    out = _copy(builds[0], tmp_path)
    man = json.loads((out / "manifest.json").read_text())
    man["complete"] = False
    (out / "manifest.json").write_text(json.dumps(man))
    assert "BAD manifest.json: the build is not finished" in _bad(out)


@pytest.mark.parametrize("name", ["../../../../etc/hostname", "/etc/hostname", "synth-000000.tar/../x"])
def test_verify_refuses_shard_names_outside_the_dataset(builds, tmp_path, name):
    out = _copy(builds[0], tmp_path)
    man = json.loads((out / "manifest.json").read_text())
    man["shards"][0]["name"] = name
    (out / "manifest.json").write_text(json.dumps(man))
    proc = synth("verify", out, "--no-progress")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr  # refused outright: nothing was read
    assert "not a synthface manifest" in lines[0] and "shards[0].name" in lines[0], lines[0]


def test_verify_refuses_card_file_names_outside_the_dataset(builds, tmp_path):
    out = _copy(builds[0], tmp_path)
    man = json.loads((out / "manifest.json").read_text())
    man["files"]["card"] = "../../../../etc/hostname"
    (out / "manifest.json").write_text(json.dumps(man))
    proc = synth("verify", out, "--no-progress")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr  # refused outright: nothing was read
    assert "not a synthface manifest" in lines[0] and "files is" in lines[0], lines[0]


def _rewrite_sample(out, shard: str, edit) -> None:
    """Change one sample's .json in a shard and record the new bytes in the manifest, so that only
    the content check can find it."""
    path = out / shard
    src = tarfile.open(path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as dst:
        done = False
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if not done and member.name.endswith(".json"):
                meta = json.loads(data)
                edit(meta)
                data = json.dumps(meta).encode()
                member.size = len(data)
                done = True
            dst.addfile(member, io.BytesIO(data))
    src.close()
    path.write_bytes(buf.getvalue())
    man = json.loads((out / "manifest.json").read_text())
    for entry in man["shards"]:
        if entry["name"] == shard:
            entry["sha256"], entry["bytes"] = hashlib.sha256(buf.getvalue()).hexdigest(), len(buf.getvalue())
    (out / "manifest.json").write_text(json.dumps(man))


@pytest.mark.parametrize("label, why", [
    ([[0.7, 1.0]], "not a whole number"),  # class 0.7: was read as class 0
    ([["abc", 1.0]], "not a whole number"),
    (5, "not a list"),
    ([[0, 0.5]], "do not sum to 1"),
])
def test_verify_checks_soft_labels(builds, tmp_path, label, why):
    out = _copy(builds[0], tmp_path)

    def edit(meta):
        meta["soft_label"] = label
    _rewrite_sample(out, "synth-000000.tar", edit)
    stderr = _bad(out)
    assert "BAD synth-000000.tar" in stderr and why in stderr, stderr
