"""Training configuration: defaults are the SynFace reference's, ``configs/*.yaml`` override them,
command-line flags override both.

Reference (LResNet50E-IR, i.e. ``r50``): ArcFace s=64 m=0.5, SGD momentum 0.9, weight decay 5e-4,
lr 0.1, batch 512, 40 epochs, lr x0.1 at epochs 24, 30 and 36, psi from {0, 0.05, ..., 1}. It
trained at 112x96; builds default to 112x112, which is what the configs use.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from typing import Any

import yaml

from synthface.errors import SynthError
from synthface.options import normalise_size, reject_unknown

from .augment import parse_augment
from .imaging import parse_crop
from .mixup import psi_schedule

MODES = ("dm", "syn", "real")
SCHEDULES = ("step", "cosine")


# Numeric options: (least allowed value, whether that value itself is allowed, what the flag means).
# A value that is not a number, or not a whole number where one is needed, is refused the same way.
_WHOLE = {"batch_size": (1, True), "epochs": (1, True), "workers": (0, True), "shuffle_buffer": (0, True),
          "embedding_size": (1, True), "val_batch_size": (1, True), "log_every": (1, True), "seed": (0, True),
          "max_steps": (1, True), "epoch_samples": (1, True), "num_classes": (1, True)}
_REAL = {"lr": (0.0, False), "scale": (0.0, False), "momentum": (0.0, True), "weight_decay": (0.0, True),
         "warmup_epochs": (0.0, True), "clip_grad": (0.0, True), "margin": (0.0, True)}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_numbers(cfg: TrainConfig) -> None:
    """Every numeric option a number in its range, as one line naming the flag: a negative --lr or
    --max-steps trains nothing useful (the loss goes to nan, or no step runs) and used to exit 0."""
    for table, whole in ((_WHOLE, True), (_REAL, False)):
        for name, (low, inclusive) in table.items():
            value = getattr(cfg, name)
            if value is None and name in ("max_steps", "epoch_samples", "num_classes", "margin"):
                continue
            bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            if not bad and whole and float(value) != int(value):
                bad = True
            if bad:
                kind = "a whole number" if whole else "a number"
                raise SynthError(f"{_flag(name)} {value!r} is not {kind}")
            if value < low or (value == low and not inclusive):
                bound = f"at least {low}" if inclusive else f"more than {low}"
                raise SynthError(f"{_flag(name)} {value} is out of range: it must be {bound}")
            setattr(cfg, name, int(value) if whole else float(value))
    if cfg.momentum >= 1:
        raise SynthError(f"--momentum {cfg.momentum} is out of range: it must be below 1")
    if not isinstance(cfg.lr_steps, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                     for v in cfg.lr_steps):
        raise SynthError(f"--lr-steps {cfg.lr_steps!r} must be a list of epochs, e.g. 24,30,36")


def check_device(device: str) -> str:
    """A device torch can name (cpu, cuda, cuda:1, mps ...) and that this machine has; one line if not."""
    import torch

    try:
        dev = torch.device(str(device))
    except (RuntimeError, ValueError):
        raise SynthError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SynthError(f"device {device!r} asked for, but this machine (or this PyTorch build) has no CUDA GPU: "
                             "use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SynthError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SynthError(f"device {device!r} asked for, but MPS is not available here: use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise SynthError(f"device {device!r} is not supported for training: use cpu, cuda or cuda:N")
    return str(dev)


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
    augment: Any = "light"  # synthetic images: a preset (light, medium, strong, off) or a mapping of options
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
        check_numbers(self)
        psi_schedule(self.psi)  # checked even without --real, where it would go unused
        self.crop = parse_crop(self.crop)
        if self.device is not None:
            self.device = check_device(self.device)
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
        try:
            with open(name, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            raise SynthError(f"{path} is not UTF-8 text: save it as UTF-8") from None
        except OSError as exc:
            raise SynthError(f"cannot read {path}: {exc.strerror or exc}") from None
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
