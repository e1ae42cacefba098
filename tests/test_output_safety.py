"""An output belongs to one build at a time, and a build changes it only after every check passed
and only in files a synthface manifest there accounts for."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from synthface.cli import main
from synthface.pipeline import schema
from tests.conftest import FAULTY, ROOT, SHAPES, shard_hashes, synth, synth_env, tree_hashes

BASE = ["--ids", "4", "--per-id", "3", "--shard-size", "5", "--generator", SHAPES, "--no-progress"]


def _one_line_error(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode not in (0, None), proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    out = tmp_path_factory.mktemp("existing") / "data"
    proc = synth("build", *BASE, "--workers", "0", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def _copy(existing, tmp_path, name="copy"):
    out = tmp_path / name
    shutil.copytree(existing, out)
    return out


# -- item 2: one build per output ------------------------------------------------------------------

def test_two_builds_started_together_one_is_refused_naming_the_other(tmp_path):
    out = tmp_path / "shared"
    # ~0.5 s of rendering per shard and 8 shards: the first build is far from done when the second checks.
    args = ["--ids", "8", "--per-id", "5", "--shard-size", "5", "--generator", SHAPES, "--generator-option",
            "delay_ms=100", "--no-progress", "--workers", "1", "--out", str(out)]
    procs = {seed: subprocess.Popen([sys.executable, "-m", "synthface.cli", "build", *args, "--seed", str(seed)],
                                    env=synth_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in (0, 1)}
    results = {}
    for seed, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        results[seed] = (proc.returncode, stdout, stderr)
    winners = [seed for seed, (rc, _, _) in results.items() if rc == 0]
    assert len(winners) == 1, results
    winner, loser = winners[0], 1 - winners[0]
    rc, _, stderr = results[loser]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "is locked by" in lines[0] and f"pid {procs[winner].pid} on {platform.node()}" in lines[0], lines[0]
    # The output is the winner's build alone, whole, and the lock is gone.
    man = json.loads((out / "manifest.json").read_text())
    assert man["complete"] and man["config"]["seed"] == winner
    assert not (out / schema.LOCK_NAME).exists()
    assert synth("verify", out, "--no-progress").returncode == 0
    reference = tmp_path / "reference"
    assert synth("build", *args[:-2], "--workers", "0", "--seed", str(winner), "--out", reference).returncode == 0
    assert shard_hashes(out) == shard_hashes(reference)


def test_a_stale_lock_is_taken_over_with_a_message(existing, tmp_path):
    out = _copy(existing, tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (out / schema.LOCK_NAME).write_text(json.dumps({"owner": "someone", "host": platform.node(), "pid": gone.pid,
                                                    "started": "2026-01-01T00:00:00+00:00"}))
    proc = synth("build", *BASE, "--workers", "0", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert f"locked by someone's build (pid {gone.pid} on {platform.node()}" in proc.stderr
    assert "no longer running" in proc.stderr and "already complete" in proc.stdout
    assert not (out / schema.LOCK_NAME).exists()


def test_a_live_lock_refuses_even_the_same_build(existing, tmp_path):
    """The lock is the kernel's (flock): held by a live process, it refuses whatever its file says."""
    out = _copy(existing, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from synthface.pipeline.lock import BuildLock; "
         "from synthface.pipeline.storage import Storage; lock = BuildLock(Storage(sys.argv[1])); lock.acquire(); "
         "print('held', flush=True); time.sleep(120)", str(out)],
        env=synth_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = tree_hashes(out)
        line = _one_line_error(synth("build", *BASE, "--workers", "0", "--out", out, "--overwrite"))
        assert f"pid {holder.pid}" in line and "choose another --out" in line
        assert tree_hashes(out) == before
    finally:
        holder.kill()
        holder.wait()
    # Killed with SIGKILL, it released the lock: the next build takes it over.
    proc = synth("build", *BASE, "--workers", "0", "--out", out)
    assert proc.returncode == 0 and "no longer running" in proc.stderr, proc.stderr


# -- item 4: every check before anything is deleted ----------------------------------------------

@pytest.mark.parametrize("extra, needle", [
    (["--gpus-per-worker", "1", "--workers", "1"], "GPUs"),  # Ray started, then its resources checked
    (["--gpus-per-worker", "1", "--workers", "0"], "GPU"),  # no Ray: checked before anything
    (["--generator", FAULTY, "--generator-option", "mode=init", "--workers", "1"], "workers could not start"),
])
def test_overwrite_deletes_nothing_when_the_build_cannot_start(existing, tmp_path, extra, needle):
    if "--gpus-per-worker" in extra:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    out = _copy(existing, tmp_path)
    before = tree_hashes(out)
    line = _one_line_error(synth("build", *BASE, "--out", out, "--overwrite", "--seed", "7", *extra))
    assert needle in line, line
    assert tree_hashes(out) == before


# -- item 5: --overwrite deletes only what a synthface manifest lists ------------------------------

def test_overwrite_refuses_a_manifest_that_is_not_ours(tmp_path):
    out = tmp_path / "webapp"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"name": "My App", "icons": [], "start_url": "/"}))
    (out / "synth-000000.tar").write_bytes(b"not ours either")
    before = tree_hashes(out)
    line = _one_line_error(synth("build", *BASE, "--workers", "0", "--out", out, "--overwrite"))
    assert "not a synthface manifest" in line and "--overwrite deletes only" in line
    assert tree_hashes(out) == before


def test_overwrite_refuses_files_no_manifest_lists(tmp_path):
    out = tmp_path / "foreign"
    out.mkdir()
    (out / "index.parquet").write_bytes(b"someone else's table")
    before = tree_hashes(out)
    line = _one_line_error(synth("build", *BASE, "--workers", "0", "--out", out, "--overwrite"))
    assert "index.parquet" in line and "--overwrite deletes only" in line
    assert tree_hashes(out) == before


def test_overwrite_keeps_foreign_files_beside_a_build(existing, tmp_path):
    out = _copy(existing, tmp_path)
    foreign = {"manifest.json.tmp-abc": b"an editor's swap file", "notes.txt": b"keep me",
               "synth-000000.tar.bak": b"a backup", ".synthface-build.lock.tmp-abc": b"x"}
    for name, data in foreign.items():
        (out / name).write_bytes(data)
    # Leftovers of an interrupted write of ours are ours (the 12 hex digits write() uses).
    (out / "synth-000001.tar.tmp-0123456789ab").write_bytes(b"partial")
    proc = synth("build", *BASE, "--workers", "0", "--out", out, "--overwrite", "--seed", "7")
    assert proc.returncode == 0, proc.stderr
    for name, data in foreign.items():
        assert (out / name).read_bytes() == data, name
    assert not (out / "synth-000001.tar.tmp-0123456789ab").exists()
    assert json.loads((out / "manifest.json").read_text())["config"]["seed"] == 7


def test_overwrite_refuses_to_replace_unlisted_files_of_another_prefix(existing, tmp_path):
    out = _copy(existing, tmp_path)
    (out / "other-000000.tar").write_bytes(b"not listed anywhere")
    before = tree_hashes(out)
    line = _one_line_error(synth("build", *BASE, "--workers", "0", "--out", out, "--overwrite", "--prefix", "other"))
    assert "other-000000.tar" in line
    assert tree_hashes(out) == before


# -- also: names past 999999, and a build of a billion shards ------------------------------------

def test_names_past_a_million_shards_are_ours():
    from synthface.pipeline.storage import ours, temp_base

    pattern = ours("synth")
    for shard in (999_999, 1_000_000, 12_345_678):
        for name in (schema.shard_name("synth", shard), schema.stats_name("synth", shard)):
            assert pattern.match(name) and pattern.match(name + ".tmp-0123456789ab"), name
    assert not pattern.match("synth-00001.tar") and not pattern.match("synth-000001.tar.tmp-abc")
    assert temp_base("manifest.json.tmp-0123456789ab") == "manifest.json" and temp_base("manifest.json.tmp-abc") is None


def test_a_billion_shards_fails_at_once(tmp_path):
    t0 = time.perf_counter()
    result = CliRunner().invoke(main, ["build", "--ids", "1000000000", "--per-id", "1", "--shard-size", "1",
                                       "--generator", SHAPES, "--out", str(tmp_path / "huge"), "--workers", "0"])
    assert time.perf_counter() - t0 < 5
    assert result.exit_code == 2 and "raise --shard-size to at least 1000" in result.stderr, result.output
    assert not os.path.exists(tmp_path / "huge")
