"""A real two-node Ray cluster on loopback: ``synth build --address`` spreads shards over both nodes.

Both nodes are started with ``ray start --block`` in their own sessions, so teardown stops exactly
these processes (by session) rather than every Ray process on the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from tests.conftest import ROOT, SHAPES, kill_session, synth, synth_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str) -> list[str]:
    exe = shutil.which("ray")
    if exe is None:
        pytest.skip("the ray command is not installed")
    return [exe, *args]


@pytest.fixture
def two_node_cluster():
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="rayt", dir="/tmp")  # short: Ray's socket paths have a length limit
    # Ray clusters started with `ray start` require token authentication; every process of the
    # test (nodes, status checks, the build's driver) shares this throwaway token.
    env = synth_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    nodes = []
    try:
        nodes.append(subprocess.Popen(
            _ray("start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1",
                 "--num-cpus", "1", "--num-gpus", "0", "--resources", '{"head_node": 1}', "--include-dashboard", "false",
                 "--temp-dir", temp_dir, "--disable-usage-stats"),
            env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while "head_node" not in subprocess.run(_ray("status", "--address", address), env=env,
                                                capture_output=True, text=True).stdout:
            assert nodes[0].poll() is None, nodes[0].stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "head node did not start"
            time.sleep(1)
        nodes.append(subprocess.Popen(
            _ray("start", "--block", "--address", address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                 "--num-gpus", "0", "--resources", '{"second_node": 1}', "--disable-usage-stats"),
            env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        while "second_node" not in subprocess.run(_ray("status", "--address", address), env=env,
                                                  capture_output=True, text=True).stdout:
            assert nodes[1].poll() is None, nodes[1].stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "second node did not join"
            time.sleep(1)
        yield address, env
    finally:
        for node in reversed(nodes):
            assert kill_session(node.pid) == []
            node.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_build_lands_on_both_nodes(two_node_cluster, tmp_path):
    address, env = two_node_cluster
    out = tmp_path / "out"
    proc = synth("build", "--ids", "6", "--per-id", "4", "--shard-size", "3", "--generator", SHAPES,
                 "--generator-option", "delay_ms=20", "--no-progress", "--address", address, "--out", out, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "on 2 nodes" in proc.stdout and "with 2 workers" in proc.stdout
    nodes = {json.loads(p.read_text())["node"] for p in out.glob("*.stats.json")}
    assert len(nodes) == 2
    assert synth("verify", out, "--no-progress").returncode == 0
    assert "second_node" in subprocess.run(_ray("status", "--address", address), env=env, capture_output=True, text=True).stdout


def test_stale_ray_state_does_not_break_a_local_build(tmp_path):
    """A ``ray_current_cluster`` file left by a stopped ``ray start --head`` (and a RAY_ADDRESS nobody
    answers at) used to make every build without --address fail; it now starts its own instance."""
    temp_dir = tempfile.mkdtemp(prefix="rays", dir="/tmp")  # short: Ray's socket paths have a length limit
    try:
        os.makedirs(os.path.join(temp_dir, "ray"))
        stale = f"127.0.0.1:{_free_port()}"
        with open(os.path.join(temp_dir, "ray", "ray_current_cluster"), "w") as f:
            f.write(stale)
        args = ["build", "--ids", "4", "--per-id", "3", "--shard-size", "6", "--generator", SHAPES, "--no-progress",
                "--workers", "1"]
        proc = synth(*args, "--out", tmp_path / "a", env=synth_env(TMPDIR=temp_dir))
        assert proc.returncode == 0, proc.stderr
        proc = synth(*args, "--out", tmp_path / "b", env=synth_env(TMPDIR=temp_dir, RAY_ADDRESS=stale))
        assert proc.returncode == 0, proc.stderr
        assert "RAY_ADDRESS is set" in proc.stderr and "starting a local Ray instance" in proc.stderr
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def token_cluster():
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="rayt", dir="/tmp")
    env = synth_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    head = subprocess.Popen(
        _ray("start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
             "--num-gpus", "0", "--include-dashboard", "false", "--temp-dir", temp_dir, "--disable-usage-stats"),
        env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while subprocess.run(_ray("status", "--address", address), env=env, capture_output=True).returncode != 0:
            assert head.poll() is None, head.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "head node did not start"
            time.sleep(1)
        yield address, env
    finally:
        assert kill_session(head.pid) == []
        head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_a_missing_or_wrong_ray_token_is_one_line(token_cluster, tmp_path):
    address, env = token_cluster
    args = ["build", "--ids", "4", "--per-id", "3", "--shard-size", "6", "--generator", SHAPES, "--no-progress",
            "--address", address, "--out", tmp_path / "out"]
    missing = {k: v for k, v in env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    for case_env in (missing, {**env, "RAY_AUTH_TOKEN": "0" * 32}):
        t0 = time.monotonic()
        proc = synth(*args, env=case_env)
        elapsed = time.monotonic() - t0
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert "refused this machine's authentication token" in lines[0] and "RAY_AUTH_TOKEN" in lines[0], lines[0]
        assert elapsed < 15, f"took {elapsed:.0f} s"
    # With the cluster's token the same build runs.
    proc = synth(*args, env=env)
    assert proc.returncode == 0, proc.stderr
