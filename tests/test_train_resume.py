"""Resuming training: checkpoints never run code, and a resumed run continues exactly where it stopped."""

from __future__ import annotations

import builtins

import torch
from test_trainer_shards import write_dataset

from tests.conftest import synth


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
