"""Bad input ends in one ``error: ...`` line and a non-zero exit, fast, before Ray starts, touching nothing."""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from synthface.cli import main

from tests.conftest import ROOT, SHAPES, synth, synth_env, tree_hashes

BASE = ["--ids", "4", "--per-id", "3", "--shard-size", "5", "--generator", SHAPES, "--no-progress"]


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A finished build that every bad command below points at (or next to)."""
    out = tmp_path_factory.mktemp("existing") / "data"
    result = CliRunner().invoke(main, ["build", *BASE, "--out", str(out), "--workers", "0"])
    assert result.exit_code == 0, result.output
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def _recipe(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _recipe_bytes(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _cases(tmp_path, out):
    out = str(out)
    with_base = lambda *extra: ["build", *BASE, "--out", out, *extra]  # noqa: E731
    return {
        "zero ids": (with_base("--ids", "0"), "ids"),
        "negative per-id": (with_base("--per-id", "-3"), "per-id"),
        "non-numeric ids": (with_base("--ids", "ten"), "--ids"),
        "non-numeric strength": (with_base("--expression-strength", "lots"), "--expression-strength"),
        "unknown generator": (with_base("--generator", "nosuchgen"), "unknown generator"),
        "bad generator path": (with_base("--generator", "tests.backends:Nope"), "has no"),
        "unknown generator option": (with_base("--generator-option", "colour=red"), "no option 'colour'"),
        "unwritable output": (["build", *BASE, "--out", "/proc/synthface-out"], "/proc/synthface-out"),
        "phi outside [0,1]": (with_base("--mixup", "0.5,1.5"), "outside [0, 1]"),
        "bad mixup range": (with_base("--mixup", "0.6:1.0"), "mixup"),
        "shard size 0": (with_base("--shard-size", "0"), "shard-size"),
        "malformed YAML": (with_base("--config", _recipe(tmp_path, "bad.yaml", "ids: [1, 2\nper_id: 3\n")), "not valid YAML"),
        "recipe not a mapping": (with_base("--config", _recipe(tmp_path, "list.yaml", "- 1\n- 2\n")), "mapping"),
        "unknown recipe key": (with_base("--config", _recipe(tmp_path, "k.yaml", "ids: 4\nper_image: 3\n")), "per_image"),
        "unknown sampling key": (with_base("--config", _recipe(tmp_path, "s.yaml", "sampling:\n  hair: long\n")), "hair"),
        "missing recipe": (with_base("--config", str(tmp_path / "nope.yaml")), "nope.yaml"),
        "conflicting output": (with_base("--seed", "7"), "different build"),
        "unknown format": (with_base("--format", "gif"), "gif"),
        "quality too high": (with_base("--quality", "101"), "quality"),
        "quality zero": (with_base("--quality", "0"), "quality"),
        "image size too small": (with_base("--image-size", "8"), "image size"),
        "image size not a number": (with_base("--image-size", "big"), "image size"),
        "unknown factor mode": (with_base("--factors", "hair"), "factor mode"),
        "bad yaw range": (with_base("--yaw-range", "50,-50"), "yaw"),
        "yaw range not two numbers": (with_base("--yaw-range", "40"), "--yaw-range"),
        "negative workers": (with_base("--workers", "-1"), "--workers"),
        "mixup with one identity": (with_base("--ids", "1"), "at least 2 identities"),
        "negative seed": (with_base("--seed", "-1"), "seed"),
        "bad prefix": (with_base("--prefix", "a/b"), "prefix"),
        "storage option without =": (with_base("--storage-option", "anon"), "KEY=VALUE"),
        "memory url with Ray workers": (["build", *BASE, "--out", "memory://x/y"], "memory://"),
        "unreachable Ray address": (with_base("--address", f"127.0.0.1:{_closed_port()}"), "no Ray cluster"),
        "missing --out": (["build", *BASE], "--out"),
        "ids missing": (["build", "--per-id", "3", "--out", out], "ids"),
        "verify missing dir": (["verify", str(tmp_path / "nothing-here")], "does not exist"),
        "verify not a build": (["verify", str(tmp_path)], "manifest"),
        # Outputs that would build into the root of a filesystem or bucket.
        "empty output": (["build", *BASE, "--out", ""], "empty"),
        "blank output": (["build", *BASE, "--out", "  "], "empty"),
        "root output": (["build", *BASE, "--out", "/"], "root of the filesystem"),
        "file URL of the root": (["build", *BASE, "--out", "file:///"], "root of the filesystem"),
        "bucketless URL": (["build", *BASE, "--out", "s3://"], "names no bucket"),
        "verify empty": (["verify", ""], "empty"),
        # Flag values that are not valid YAML, and a recipe that is not UTF-8.
        "generator option, unclosed list": (with_base("--generator-option", "foo=[1,"), "--generator-option"),
        "storage option, unclosed mapping": (with_base("--storage-option", "a={"), "--storage-option"),
        "generator option, tab": (with_base("--generator-option", "a=\t"), "--generator-option"),
        "recipe not UTF-8": (with_base("--config", _recipe_bytes(tmp_path, "latin.yaml", b"ids: 4\n\xff\xfe: 3\n")), "UTF-8"),
        "image size of three parts": (with_base("--image-size", "112x96x3"), "3 parts"),
    }


def test_bad_inputs_fail_fast_with_one_line(existing, tmp_path):
    before = tree_hashes(existing)
    cases = _cases(tmp_path, existing)
    assert len(cases) >= 15
    runner = CliRunner()
    for name, (args, needle) in cases.items():
        t0 = time.perf_counter()
        result = runner.invoke(main, args)
        elapsed = time.perf_counter() - t0
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code not in (0, None), f"{name}: exit {result.exit_code}\n{result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), f"{name}: {result.exception!r}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: stderr {result.stderr!r}"
        assert needle.lower() in lines[0].lower(), f"{name}: {lines[0]!r} does not mention {needle!r}"
        assert elapsed < 5, f"{name}: took {elapsed:.1f}s (validation must happen before Ray starts)"
        assert tree_hashes(existing) == before, f"{name}: changed the existing output"


def test_error_line_from_a_real_process(existing):
    """The same contract through the installed entry point: stderr is one line, exit code non-zero."""
    proc = synth("build", *BASE, "--out", existing, "--quality", "abc")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: "), proc.stderr
    assert "--quality" in proc.stderr


def test_overwrite_replaces_a_conflicting_output(existing, tmp_path):
    out = tmp_path / "copy"
    runner = CliRunner()
    assert runner.invoke(main, ["build", *BASE, "--out", str(out), "--workers", "0"]).exit_code == 0
    (out / "notes.txt").write_text("keep me")
    result = runner.invoke(main, ["build", *BASE, "--out", str(out), "--workers", "0", "--seed", "7", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "keep me"  # only our own files are cleared
    assert tree_hashes(out)["manifest.json"] != tree_hashes(existing)["manifest.json"]
    # The same command again resumes (nothing to do) instead of refusing.
    again = runner.invoke(main, ["build", *BASE, "--out", str(out), "--workers", "0", "--seed", "7"])
    assert again.exit_code == 0 and "already complete" in again.output


def _edit_manifest(change):
    def apply(out):
        man = json.loads((out / "manifest.json").read_text())
        change(man)
        (out / "manifest.json").write_text(json.dumps(man))
    return apply


def _directory(name):
    def apply(out):
        (out / name).unlink()
        (out / name).mkdir()
        (out / name / "inside").write_text("not ours")
    return apply


DAMAGE = {
    "shards not a list": (_edit_manifest(lambda m: m.update(shards={"0": m["shards"][0]})), "shards is dict"),
    "shard index not a number": (_edit_manifest(lambda m: m["shards"][0].update(index="abc")), "shards[0].index is 'abc'"),
    "config null": (_edit_manifest(lambda m: m.update(config=None)), "config is None"),
    "num_shards a string": (_edit_manifest(lambda m: m.update(num_shards="3")), "num_shards"),
    "a shard is a directory": (_directory("synth-000001.tar"), "synth-000001.tar"),
    "the manifest is a directory": (_directory("manifest.json"), "manifest.json"),
}


def _damaged_copy(existing, dest, apply):
    """A copy of the finished build with one damage applied, and its file hashes before any command."""
    shutil.copytree(existing, dest)
    apply(dest)
    return dest, tree_hashes(dest)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_outputs_give_one_line_and_are_left_alone(existing, tmp_path, damage):
    apply, needle = DAMAGE[damage]
    out, before = _damaged_copy(existing, tmp_path / "data", apply)
    runner = CliRunner()
    for args in (["build", *BASE, "--out", str(out), "--workers", "0"],
                 ["build", *BASE, "--out", str(out), "--workers", "0", "--overwrite"],
                 ["verify", str(out), "--no-progress"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, f"{args[0]}: exit {result.exit_code}\n{result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        # verify lists each bad file on a BAD line before its one error line.
        assert lines and all(line.startswith("BAD ") for line in lines[:-1]), result.stderr
        assert lines[-1].startswith("error: ") and needle in result.stderr, result.stderr
        assert tree_hashes(out) == before, f"{args}: changed the output"


def test_a_full_disk_while_writing_the_index_is_exit_3_and_one_line(tmp_path):
    """``ulimit -f`` makes writes past its size fail (EFBIG) as a full disk would: here the shards (58 KB)
    and the manifest (~100 KB) fit under 150 KB, the index (~200 KB) does not."""
    out = tmp_path / "full"
    args = ["build", "--ids", "500", "--per-id", "8", "--shard-size", "8", "--image-size", "32", "--generator", SHAPES,
            "--no-progress", "--workers", "0", "--out", str(out)]
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "synthface.cli", *args])
    proc = subprocess.run(["bash", "-c", f"ulimit -f 150; exec {command}"], env=synth_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 3 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: cannot write") and "index.parquet" in lines[0] and "re-run" in lines[0]
    assert not (out / "index.parquet").exists() and not [p for p in out.iterdir() if ".tmp-" in p.name]
    assert len(list(out.glob("*.tar"))) == 500
    # With room again, the same command finishes without rendering anything.
    again = synth(*args)
    assert again.returncode == 0 and "(500 shards kept from a previous run)" in again.stdout, again.stderr
    assert synth("verify", out, "--no-progress").returncode == 0


def test_a_file_size_limit_with_ray_workers_is_one_line(tmp_path):
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "synthface.cli", "build", *BASE, "--workers", "1",
                                                "--out", str(tmp_path / "out")])
    proc = subprocess.run(["bash", "-c", f"ulimit -f 150; exec {command}"], env=synth_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode in (2, 3) and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


# --- synth train, eval and preview -------------------------------------------------------------

def _train(data, out, *extra):
    return ["train", "--config", "tiny", "--data", str(data), "--out", str(out), "--image-size", "32",
            "--device", "cpu", "--epochs", "1", *map(str, extra)]


def _train_cases(tmp_path, data):
    import torch

    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    garbage_ts = tmp_path / "garbage.ts"
    garbage_ts.write_bytes(b"PK\x03\x04 this is no TorchScript archive" * 10)
    run = tmp_path / "run"
    cases = {
        "train: negative lr": (_train(data, run, "--lr", "-1"), "--lr"),
        "train: zero lr": (_train(data, run, "--lr", "0"), "--lr"),
        "train: unknown device": (_train(data, run, "--device", "banana"), "banana"),
        "train: negative workers": (_train(data, run, "--workers", "-2"), "--workers"),
        "train: --out is a file": (_train(data, a_file), "is a file"),
        "train: negative max-steps": (_train(data, run, "--max-steps", "-1"), "--max-steps"),
        "train: psi not a schedule, without --real": (_train(data, run, "--psi", "banana"), "banana"),
        "train: negative shuffle buffer": (_train(data, run, "--shuffle-buffer", "-5"), "--shuffle-buffer"),
        "train: zero epoch samples": (_train(data, run, "--epoch-samples", "0"), "--epoch-samples"),
        "eval: garbage TorchScript": (["eval", str(garbage_ts), "--pairs", str(tmp_path)], "not a TorchScript model"),
        "preview: a sheet of 10^10 tiles": (["preview", "--out", str(tmp_path / "p.png"), "--ids", "100000",
                                             "--per-id", "100000"], "lower --ids or --per-id"),
    }
    if not torch.cuda.is_available():
        cases["train: cuda without a GPU"] = (_train(data, run, "--device", "cuda"), "no CUDA GPU")
    return cases


def test_train_eval_preview_bad_inputs_fail_with_one_line(existing, tmp_path):
    """Each of these used to end in a traceback, or (max-steps, psi, shuffle buffer) to train nothing
    useful and exit 0."""
    import torch  # noqa: F401 - imported once here, so the timing below is the check, not the import

    before = tree_hashes(existing)
    runner = CliRunner()
    for name, (args, needle) in _train_cases(tmp_path, existing).items():
        t0 = time.perf_counter()
        result = runner.invoke(main, args)
        elapsed = time.perf_counter() - t0
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2, f"{name}: exit {result.exit_code}\n{result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), f"{name}: {result.exception!r}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: stderr {result.stderr!r}"
        assert needle.lower() in lines[0].lower(), f"{name}: {lines[0]!r} does not mention {needle!r}"
        assert elapsed < 10, f"{name}: took {elapsed:.1f}s"
        assert not (tmp_path / "run").exists(), f"{name}: created the run directory"
    assert tree_hashes(existing) == before
    assert (tmp_path / "a-file").read_text() == "not a directory"


def _rewrite_shard(out, name, change, record=True):
    """Rewrite shard ``name`` of the build at ``out``, ``change(member_name, bytes) -> bytes`` applied to
    every member; with ``record`` its new sha256 and size go into the manifest (so only the change is wrong)."""
    import hashlib
    import io
    import tarfile

    path = out / name
    buf = io.BytesIO()
    with tarfile.open(path) as src, tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as dst:
        for member in src:
            data = change(member.name, src.extractfile(member).read())
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    if record:
        _record(out, name)


def _record(out, name):
    import hashlib

    data = (out / name).read_bytes()
    man = json.loads((out / "manifest.json").read_text())
    for entry in man["shards"]:
        if entry["name"] == name:
            entry["sha256"], entry["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    (out / "manifest.json").write_text(json.dumps(man))


def _soft_label(value):
    def change(member, data):
        if member.endswith(".json"):
            meta = json.loads(data)
            meta["soft_label"] = value(meta) if callable(value) else value
            return json.dumps(meta).encode()
        return data
    return lambda out: _rewrite_shard(out, "synth-000000.tar", change)


def _damaged_jpeg(record):
    def change(member, data):
        if member.endswith(".jpg"):
            data = bytearray(data)
            data[len(data) // 2:len(data) // 2 + 16] = bytes(16)  # zeros in the middle of the entropy-coded data
            return bytes(data)
        return data
    return lambda out: _rewrite_shard(out, "synth-000000.tar", change, record=record)


def _huge_member(out):
    """The first member's header claims 10^13 bytes (GNU base-256 size field), checksum made right again."""
    path = out / "synth-000000.tar"
    data = bytearray(path.read_bytes())
    data[124:136] = bytes([0x80]) + (10**13).to_bytes(11, "big")
    data[148:156] = b" " * 8
    data[148:156] = f"{sum(data[:512]):06o}\0 ".encode()
    path.write_bytes(bytes(data))
    _record(out, "synth-000000.tar")


def _num_classes(value):
    return _edit_manifest(lambda m: m.update(num_classes=value))


TRAIN_DAMAGE = {
    "soft label with a class that is text": (_soft_label([["abc", 1]]), "soft label"),
    "soft label that is a number": (_soft_label(5), "soft label"),
    "class 0.7 past a whole number": (_soft_label(lambda m: [[m["soft_label"][0][0] + 0.7, 1.0]]), "whole number"),
    "tar member claiming 10^13 bytes": (_huge_member, "claims 10000000000000 bytes"),
    "num_classes 10^9 in the manifest": (_num_classes(10**9), "1000000000 classes"),
    "num_classes a string in the manifest": (_num_classes("many"), "num_classes"),
    "damaged JPEG bytes (sha256 recorded again)": (_damaged_jpeg(record=True), "damaged JPEG data"),
    "shard bytes that fail their recorded sha256": (_damaged_jpeg(record=False), "sha256"),
}


@pytest.mark.parametrize("damage", sorted(TRAIN_DAMAGE))
def test_training_on_damaged_data_is_one_line_and_trains_nothing(existing, tmp_path, damage):
    apply, needle = TRAIN_DAMAGE[damage]
    data, before = _damaged_copy(existing, tmp_path / "data", apply)
    run = tmp_path / "run"
    result = CliRunner().invoke(main, _train(data, run))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, f"exit {result.exit_code}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert lines and lines[-1].startswith("error: ") and needle in lines[-1], result.stderr
    assert all(not line.startswith(("Traceback", "  File")) for line in lines), result.stderr
    assert not (run / "checkpoint.pt").exists()
    assert tree_hashes(data) == before
    if "manifest" not in damage:  # synth verify names the same shard: BAD lines, then one error line
        proc = synth("verify", data, "--no-progress")
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and lines[-1].startswith("error: "), proc.stderr
        # (The card files name shard sizes, so a recorded new sha256 and size makes them BAD too.)
        assert all(line.startswith("BAD ") for line in lines[:-1]), proc.stderr
        assert any(line.startswith("BAD synth-000000.tar") for line in lines[:-1]), proc.stderr
