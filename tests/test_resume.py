"""Interrupted builds resume to exactly the bytes of an uninterrupted one."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pyarrow.parquet as pq

from tests.conftest import ROOT, SHAPES, kill_session, session_pids, shard_hashes, synth, synth_env

# 12 shards of 10 images, ~0.3 s of rendering per shard: long enough to kill mid-way.
ARGS = ["--ids", "12", "--per-id", "10", "--shard-size", "10", "--generator", SHAPES,
        "--generator-option", "delay_ms=30", "--no-progress"]


def _snapshot(out):
    man = json.loads((out / "manifest.json").read_text())
    return {
        "shards": shard_hashes(out),
        "manifest": man["shards"],
        "complete": man["complete"],
        "index": pq.read_table(out / "index.parquet"),
        "index_bytes": (out / "index.parquet").read_bytes(),
        # The dataset card, preview and wids index: written again at the end, to the same bytes.
        "card": {name: (out / name).read_bytes() for name in ("README.md", "preview.png", "shardindex.json")
                 if (out / name).exists()},
    }


def test_sigkill_then_resume_is_byte_identical(tmp_path):
    reference = tmp_path / "reference"
    proc = synth("build", *ARGS, "--workers", "0", "--out", reference)
    assert proc.returncode == 0, proc.stderr
    expected = _snapshot(reference)

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "synthface.cli", "build", *ARGS, "--workers", "2", "--out", str(out)]
    child = subprocess.Popen(cmd, env=synth_env(), cwd=ROOT, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("*.tar"))) < 3:
            assert child.poll() is None, "the build ended before it could be killed"
            assert time.monotonic() < deadline, "no shards appeared"
            time.sleep(0.05)
    finally:
        lingering = kill_session(child.pid)
        child.wait(timeout=30)
    assert lingering == [] and session_pids(child.pid) == []
    written = len(list(out.glob("*.tar")))
    assert written < 12, "the build finished before the kill; make it slower"
    assert not json.loads((out / "manifest.json").read_text())["complete"]

    again = synth("build", *ARGS, "--workers", "2", "--out", out)
    assert again.returncode == 0, again.stderr
    assert "kept from a previous run" in again.stdout
    got = _snapshot(out)
    assert got["shards"] == expected["shards"] and len(got["shards"]) == 12
    assert got["manifest"] == expected["manifest"] and got["complete"]
    assert got["index"].equals(expected["index"]) and got["index_bytes"] == expected["index_bytes"]
    assert got["card"] == expected["card"] and len(got["card"]) == 3
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    assert synth("verify", out, "--no-progress").returncode == 0


def test_leftovers_are_adopted_or_redone_without_duplicates(tmp_path):
    out = tmp_path / "data"
    args = ["--ids", "5", "--per-id", "4", "--shard-size", "4", "--generator", SHAPES, "--no-progress",
            "--workers", "0", "--out", out]
    assert synth("build", *args).returncode == 0
    expected = _snapshot(out)

    # The state a crash can leave: the manifest lags behind (shards 3 and 4 finished but were not
    # recorded, and shard 3 lost its stats file), a temporary file of an unfinished write, a shard
    # whose bytes no longer match the manifest, and no index yet.
    man = json.loads((out / "manifest.json").read_text())
    man["shards"] = [s for s in man["shards"] if s["index"] < 3]
    man["complete"] = False
    (out / "manifest.json").write_text(json.dumps(man))
    (out / "synth-000003.stats.json").unlink()
    (out / "index.parquet").unlink()
    (out / "synth-000001.tar.tmp-0123456789ab").write_bytes(b"partial")
    (out / "synth-000000.tar").write_bytes(b"truncated")

    again = synth("build", *args)
    assert again.returncode == 0, again.stderr
    # Shards 1, 2 (manifest, hash ok) and 4 (stats file, hash ok) are kept; 0 and 3 are rendered again.
    assert "(3 shards kept from a previous run)" in again.stdout
    got = _snapshot(out)
    assert got["shards"] == expected["shards"] and got["manifest"] == expected["manifest"]
    assert got["index_bytes"] == expected["index_bytes"] and got["card"] == expected["card"]
    assert sorted(p.name for p in out.iterdir() if ".tmp-" in p.name) == []

    done = synth("build", *args)
    assert done.returncode == 0 and "already complete" in done.stdout
