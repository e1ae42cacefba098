"""Shared helpers for the build tests: run ``synth`` as a real subprocess, hash outputs, kill sessions."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The test backends are given to builds as ``tests.backends:Class``, so the repository root must
# be importable here as it is in the ``synth`` subprocesses (see synth_env).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHAPES = "tests.backends:ShapesBackend"
FAULTY = "tests.backends:FaultyBackend"


def synth_env(**extra: str) -> dict[str, str]:
    """Environment for ``synth`` subprocesses: the repository importable (for the test backends)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.update(extra)
    return env


def synth(*args: str, env: dict[str, str] | None = None, timeout: float = 180, cwd: Path | None = None):
    """Run ``synth ARGS`` to completion; returns the CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "synthface.cli", *map(str, args)],
        env=env or synth_env(), capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree_hashes(out: Path) -> dict[str, str]:
    """sha256 of every file under ``out`` (what "left untouched" compares)."""
    return {str(p.relative_to(out)): sha256(p) for p in sorted(Path(out).rglob("*")) if p.is_file()}


def shard_hashes(out: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted(Path(out).glob("*.tar"))}


def session_pids(sid: int) -> list[int]:
    """Processes of a session (a build started with start_new_session=True, and the Ray processes it spawned)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def kill_session(sid: int, wait: float = 10.0) -> list[int]:
    """SIGKILL every process of a session; Ray workers get their own process groups, so killpg alone misses them.

    Returns the pids still alive after ``wait`` seconds (should be none)."""
    try:
        os.killpg(sid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + wait
    while True:
        alive = session_pids(sid)
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)

