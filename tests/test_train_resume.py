"""Resuming training: checkpoints never run code, and a resumed run continues exactly where it stopped."""

from __future__ import annotations

import builtins
import csv
import subprocess
import sys
import time

import torch
from test_trainer_shards import write_dataset, write_real_folder

from tests.conftest import ROOT, kill_session, synth, synth_env


class _Payload:
    """Unpickling this calls open(marker, "w"): the file appears if the checkpoint is loaded unsafely."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def test_resume_from_a_malicious_checkpoint_runs_nothing(tmp_path):
    data = write_dataset(tmp_path / "syn", classes=4, per_class=2, shards=1, size=(32, 32))
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"network": "mbf", "backbone": {}, "epoch": 1, "extra": _Payload(marker)}, evil)
    proc = synth("train", "--config", "tiny", "--data", data, "--image-size", "32", "--out", tmp_path / "run",
                 "--resume", evil)
    assert not marker.exists(), "loading the checkpoint ran its payload"
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not loaded" in lines[0], proc.stderr
    # eval refuses the same file the same way.
    proc = synth("eval", evil, "--pairs", tmp_path, "--network", "mbf")
    assert not marker.exists() and proc.returncode == 2, proc.stderr


def _log_rows(run) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def _same_numbers(rows) -> list[tuple]:
    """What must not depend on being interrupted: which epoch and step, the loss, lr and psi (not timings)."""
    return [(r["epoch"], r["step"], r["loss"], r["lr"], r["psi"], r["seconds"] != "") for r in rows]


def test_resume_after_kill_9_mid_epoch_repeats_the_uninterrupted_run(tmp_path):
    """kill -9 in the middle of epoch 2, then --resume: log.csv holds each row once, and every loss,
    lr and psi equals those of a run that was never interrupted (same --seed)."""
    data = write_dataset(tmp_path / "syn", classes=8, per_class=12, shards=3, size=(32, 32))
    real = write_real_folder(tmp_path / "real", ids=3, per_id=3, size=(32, 32))
    recipe = tmp_path / "resume.yaml"
    recipe.write_text("network: mbf\nbatch_size: 8\nepochs: 3\nlr: 0.05\nschedule: step\nlr_steps: [2]\n"
                      "shuffle_buffer: 16\nlog_every: 1\namp: false\npsi: 0.5,0.8,1\nworkers: 1\nexport: false\n")
    args = ["train", "--config", recipe, "--data", data, "--real", real, "--image-size", "32", "--seed", "3",
            "--device", "cpu"]
    whole = synth(*args, "--out", tmp_path / "whole", timeout=600)
    assert whole.returncode == 0, whole.stderr

    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "synthface.cli", *map(str, args), "--out", str(run)],
                            env=synth_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            rows = _log_rows(run) if (run / "log.csv").is_file() else []
            if any(r["epoch"] == "2" and int(r["step"] or 0) >= 14 for r in rows):
                break  # two steps into epoch 2 (12 steps an epoch), well before its end
            time.sleep(0.01)
    finally:
        assert not kill_session(proc.pid)
        proc.wait()
    rows = _log_rows(run)
    assert any(r["epoch"] == "2" for r in rows) and not any(r["epoch"] == "2" and r["seconds"] for r in rows), \
        "the kill did not land inside epoch 2"
    resumed = synth(*args, "--out", run, "--resume", run, timeout=600)
    assert resumed.returncode == 0, resumed.stderr

    got, want = _log_rows(run), _log_rows(tmp_path / "whole")
    keys = [(r["epoch"], r["step"], r["seconds"] != "") for r in got]
    assert len(keys) == len(set(keys)), "log.csv repeats rows of the killed epoch"
    assert _same_numbers(got) == _same_numbers(want)
    losses = {name: proc.stdout.split("epoch losses: ")[1].splitlines()[0].split(", ")
              for name, proc in (("whole", whole), ("resumed", resumed))}
    assert losses["resumed"] == losses["whole"][1:]  # the resumed run trained epochs 2 and 3 only, to the same losses
