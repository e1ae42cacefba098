"""Training configuration: defaults are the SynFace reference's, ``configs/*.yaml`` override them,
command-line flags override both.

Reference (LResNet50E-IR, i.e. ``r50``): ArcFace s=64 m=0.5, SGD momentum 0.9, weight decay 5e-4,
lr 0.1, batch 512, 40 epochs, lr x0.1 at epochs 24, 30 and 36, psi from {0, 0.05, ..., 1}. It
trained at 112x96; builds default to 112x112, which is what the configs use.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from typing import Any

import yaml

from synthface.errors import SynthError
from synthface.options import normalise_size, reject_unknown

from .augment import parse_augment

MODES = ("dm", "syn", "real")
SCHEDULES = ("step", "cosine")


def check_real_cache_mb(mb: float) -> float:
    """The decoded real-image cache size (``--real-cache-mb``), checked where options come in and where
    the loader is built directly."""
    if float(mb) < 0:
        raise SynthError(f"real-image cache of {mb} MB (--real-cache-mb): give a size of 0 (off) or more")
    return float(mb)


@dataclass
class TrainConfig:
    data: str | None = None  # synthetic shards: pattern, dataset dir, or URL
    real: str | None = None  # real faces: identity-per-folder dir, or shards
    mode: str = "dm"  # dm: domain mixup (synthetic only when no real data); syn: synthetic only; real: baseline
    out: str = "runs/train"
    network: str = "r50"
    image_size: Any = (112, 112)
    embedding_size: int = 512
    loss: str = "arcface"
    scale: float = 64.0
    margin: float | None = None  # 0.5 for arcface, 0.35 for cosface
    psi: Any = "reference"
    batch_size: int = 512
    epochs: int = 40
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "step"
    lr_steps: list[float] = field(default_factory=lambda: [24, 30, 36])  # epochs; x0.1 at each
    warmup_epochs: float = 0.0
    clip_grad: float = 5.0
    workers: int = 2
    shuffle_buffer: int = 2000
    real_cache_mb: float = 1024.0  # decoded real images kept per loader worker (domain mixup)
    resampled: bool = False
    flip: bool = True
    crop: float = 1.0
    augment: Any = "default"  # synthetic images: a preset (default, light, strong, off) or a mapping of options
    augment_real: bool = False  # augment the real images of domain mixup too
    amp: bool = True
    seed: int = 0
    num_classes: int | None = None  # only for shards without a manifest
    epoch_samples: int | None = None  # samples per epoch; default: all synthetic (or real) samples
    max_steps: int | None = None  # cap on steps per epoch (smoke runs)
    val: str | None = None  # pairs set (dir, pairs.txt or .bin) evaluated after every epoch
    val_batch_size: int = 128
    log_every: int = 20
    device: str | None = None
    export: bool = True  # write backbone.pth/.ts/.onnx at the end

    def __post_init__(self):
        self.image_size = normalise_size(self.image_size)
        if self.mode not in MODES:
            raise SynthError(f"unknown training mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.schedule not in SCHEDULES:
            raise SynthError(f"unknown lr schedule {self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        check_real_cache_mb(self.real_cache_mb)
        self.augment = parse_augment(self.augment)
        for name in ("batch_size", "epochs"):
            if int(getattr(self, name)) < 1:
                raise SynthError(f"{name.replace('_', '-')} must be at least 1")
        if self.mode == "real" and not self.real:
            raise SynthError("real-only training needs real images: pass --real DIR")
        if self.mode != "real" and not self.data:
            raise SynthError("no training data: pass --data (shard pattern, dataset directory or URL)")

    @classmethod
    def load(cls, name: str | None = None, **overrides: Any) -> TrainConfig:
        values: dict[str, Any] = {}
        if name:
            values.update(read_config(name))
        values.update({k: v for k, v in overrides.items() if v is not None})
        reject_unknown(values, {f.name for f in fields(cls)}, "training option")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["image_size"] = list(self.image_size)
        out["augment"] = self.augment.to_dict()
        return out


def available() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("synthface.trainer.configs").iterdir() if p.name.endswith(".yaml"))


def read_config(name: str) -> dict[str, Any]:
    """A config file by path, or by name from ``trainer/configs``."""
    if os.path.isfile(name):
        path = name
        with open(name, encoding="utf-8") as f:
            text = f.read()
    else:
        res = resources.files("synthface.trainer.configs") / f"{name.removesuffix('.yaml')}.yaml"
        if not res.is_file():
            raise SynthError(f"no training config {name!r}: give a YAML path or one of {', '.join(available())}")
        path, text = str(res), res.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SynthError(f"{path} is not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise SynthError(f"{path} must be a mapping of option: value")
    return data
