"""Injected faults on real Ray workers: retried, replaced, or reported with the rest kept."""

from __future__ import annotations

import json

import pytest

from synthface.pipeline.config import BuildConfig
from tests.backends import noise0
from tests.conftest import FAULTY, synth

IDS, PER_ID, SHARD = 6, 4, 4  # 6 shards
ARGS = ["--ids", IDS, "--per-id", PER_ID, "--shard-size", SHARD, "--generator", FAULTY, "--workers", "2", "--no-progress"]


def _trigger(shard: int) -> str:
    return repr(noise0(BuildConfig(ids=IDS, per_id=PER_ID, shard_size=SHARD, generator=FAULTY), shard))


@pytest.mark.parametrize("mode", ["raise", "exit"])
def test_first_attempt_fails_then_retry_succeeds(tmp_path, mode):
    """``raise``: the task fails and is retried; ``exit``: the worker process dies and is replaced."""
    marker = tmp_path / "fired"
    out = tmp_path / "out"
    proc = synth("build", *ARGS, "--out", out, "--generator-option", f"fail_on={_trigger(2)}",
                 "--generator-option", f"mode={mode}", "--generator-option", f"marker={marker}")
    assert proc.returncode == 0, proc.stderr
    assert marker.exists(), "the fault never fired"
    man = json.loads((out / "manifest.json").read_text())
    assert man["complete"] and [s["index"] for s in man["shards"]] == list(range(6))
    assert synth("verify", out, "--no-progress").returncode == 0


def test_permanent_failure_lists_the_shard_and_keeps_the_rest(tmp_path):
    out = tmp_path / "out"
    proc = synth("build", *ARGS, "--out", out, "--max-attempts", "2", "--generator-option", f"fail_on={_trigger(3)}")
    assert proc.returncode == 3, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 6 shards failed after 2 attempts: synth-000003.tar (RuntimeError: injected fault")
    assert "re-run the same command" in last
    man = json.loads((out / "manifest.json").read_text())
    assert not man["complete"] and [s["index"] for s in man["shards"]] == [0, 1, 2, 4, 5]
    assert sorted(p.name for p in out.glob("*.tar")) == [f"synth-00000{i}.tar" for i in (0, 1, 2, 4, 5)]
    assert not (out / "index.parquet").exists()
    # verify names the missing shard too.
    check = synth("verify", out, "--no-progress")
    assert check.returncode != 0 and "synth-000003.tar" in check.stderr.strip().splitlines()[-1]
