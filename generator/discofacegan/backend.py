"""The ``discofacegan`` generator backend: coefficient records -> aligned face images.

Records follow ``synthface.generator.layout``, which is DiscoFaceGAN's own input layout (identity 160,
expression 64, pose 3, lighting 27, noise 32), so a record goes into the mapping network as is.
Sampling happens in z space (``DiscoFaceGANPrior``: identity 128, expression 32, lighting 16,
pose 3, decoded by the released VAE decoders; noise 32 stays Gaussian), and the shared sampler
mixes identities on the decoded coefficients, as the reference does.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthface.errors import SynthError

from .. import layout
from ..registry import Backend, RenderResult
from ..sampler import GaussianPrior, SamplingConfig
from . import align, ops
from .convert import Weights, load

POSE_TRIES = 64  # z draws per pose before the decoded pose is clipped into the configured ranges


@functools.lru_cache(maxsize=2)
def _load_cached(path: str, mtime_ns: int) -> Weights:
    return load(path)


def load_weights(path: Any) -> Weights:
    if not path:
        raise SynthError(
            "generator 'discofacegan' needs converted weights: pass --generator-option weights=FILE "
            "(made by `synth convert-weights`)"
        )
    p = Path(os.path.expanduser(str(path)))
    if not p.is_file():
        return load(p)  # raises the explanatory error
    return _load_cached(str(p.resolve()), p.stat().st_mtime_ns)


class DiscoFaceGANPrior(GaussianPrior):
    """Draws z-space latents and decodes them to coefficients with the released decoders.

    ``expression_strength`` and ``lighting_variety`` scale the z draws (0 gives the decoders'
    output at z = 0). Pose keeps the decoded distribution, restricted to the configured
    pitch/yaw/roll ranges by redrawing z; ``pose_distribution`` does not apply.
    """

    def __init__(self, cfg: SamplingConfig, weights: Weights):
        super().__init__(cfg)
        self.decoders = weights.decoders
        self._lo_rad, self._hi_rad = np.radians(self._lo), np.radians(self._hi)

    def identity(self, rng: np.random.Generator) -> np.ndarray:
        return self.decoders["id"](rng.standard_normal(128, dtype=np.float32))

    def expression(self, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal(32, dtype=np.float32) * np.float32(self.cfg.expression_strength)
        return self.decoders["exp"](z)

    def lighting(self, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal(16, dtype=np.float32) * np.float32(self.cfg.lighting_variety)
        return self.decoders["gamma"](z)

    def pose(self, rng: np.random.Generator) -> np.ndarray:
        for _ in range(POSE_TRIES):
            pose = self.decoders["rot"](rng.standard_normal(3, dtype=np.float32))
            if np.all((pose >= self._lo_rad) & (pose <= self._hi_rad)):
                return pose
        return np.clip(pose, self._lo_rad, self._hi_rad).astype(np.float32)


def _dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
             "fp16": torch.float16, "float16": torch.float16}
    if precision not in table:
        raise SynthError(f"precision {precision!r} is not one of auto, fp32, bf16, fp16")
    return table[precision]


def _flag(name: str, value: Any, auto: bool) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return auto
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SynthError(f"option {name}={value!r}: use true, false or auto")


class DiscoFaceGANBackend(Backend):
    """DiscoFaceGAN (CVPR 2020) rendered in PyTorch from converted official weights.

    Options: ``weights`` (converted file, required), ``truncation_psi`` (0.7: strength kept of
    each identity's distance from the average), ``truncation_cutoff`` (8 of 14 layers),
    ``batch_size`` (images per forward pass), ``precision`` (auto = bf16/fp16 on GPU, fp32 on CPU),
    ``channels_last`` (auto = on GPU), ``align`` (``arcface``: fixed similarity crop to the ArcFace
    template at ``image_size``; ``none``: the raw 256x256 output, as the reference saves it).
    """

    name = "discofacegan"
    version = "2"  # 2: the alignment crop at 123.830 px per unit (was 123.816)
    options = {
        "weights": None,
        "truncation_psi": 0.7,
        "truncation_cutoff": 8,
        "batch_size": 16,
        "precision": "auto",
        "channels_last": "auto",
        "align": "arcface",
    }

    def __init__(self, image_size: Any = 112, device: str = "cpu", **options: Any):
        super().__init__(image_size=image_size, device=device, **options)
        o = self.opts
        try:
            self.psi = float(o["truncation_psi"])
            self.cutoff = int(o["truncation_cutoff"])
            self.batch_size = int(o["batch_size"])
        except (TypeError, ValueError):
            raise SynthError("discofacegan options truncation_psi, truncation_cutoff and batch_size must be numbers") from None
        if not (0.0 <= self.psi <= 2.0) or math.isnan(self.psi):
            raise SynthError(f"truncation_psi {self.psi} is outside [0, 2] (1 = no truncation)")
        if not (0 <= self.cutoff <= 14):
            raise SynthError(f"truncation_cutoff {self.cutoff} is outside 0..14 layers")
        if self.batch_size < 1:
            raise SynthError(f"batch_size {self.batch_size} must be at least 1")
        if o["align"] not in ("arcface", "none"):
            raise SynthError(f"align {o['align']!r}: use arcface or none")
        try:
            self.torch_device = torch.device(device)
        except (RuntimeError, TypeError):
            raise SynthError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
        if self.torch_device.type == "cuda" and not torch.cuda.is_available():
            raise SynthError(f"device {device!r} requested but no CUDA GPU is available: use --device cpu")
        self.dtype = _dtype(str(o["precision"]).lower(), self.torch_device)
        channels_last = _flag("channels_last", o["channels_last"], self.torch_device.type == "cuda")
        self.weights = load_weights(o["weights"])
        res = self.weights.cfg.resolution
        if o["align"] == "none" and self.image_size != (res, res):
            raise SynthError(f"align=none gives the raw {res}x{res} output: set the image size to {res}")
        self.generator = self.weights.generator().to(self.torch_device, self.dtype, channels_last)
        self.avg_w_id = torch.from_numpy(self.weights.average_w_id).to(self.torch_device)
        self.matrix, landmarks = align.to_arcface(self.image_size, res)
        if o["align"] == "none":
            landmarks = align.source_landmarks() * (res / align.SOURCE_SIZE)
        self.landmarks = landmarks.astype(np.float32)

    @classmethod
    def prior(cls, cfg: SamplingConfig, **options: Any) -> GaussianPrior:
        return DiscoFaceGANPrior(cfg, load_weights(options.get("weights")))

    @torch.inference_mode()
    def images(self, coeffs: np.ndarray) -> torch.Tensor:
        """Float NCHW images in [-1, 1]-ish at the output size, before quantisation."""
        z = torch.from_numpy(np.ascontiguousarray(coeffs, dtype=np.float32))
        ws = self.generator.truncated_dlatents(z, self.avg_w_id, self.psi, self.cutoff)
        x = self.generator.synthesis(ws).float()
        if self.opts["align"] == "arcface":
            x = align.warp(x, self.matrix, self.image_size)
        return x

    def render(self, coeffs: np.ndarray) -> RenderResult:
        coeffs = np.asarray(coeffs, dtype=np.float32)
        if coeffs.ndim != 2 or coeffs.shape[1] != layout.TOTAL:
            raise SynthError(f"discofacegan renders [batch, {layout.TOTAL}] coefficient records, got shape {list(coeffs.shape)}")
        if not np.isfinite(coeffs).all():
            raise SynthError("coefficient records contain NaN or infinity")
        out = []
        for start in range(0, len(coeffs), self.batch_size):
            x = self.images(coeffs[start : start + self.batch_size])
            out.append(ops.to_uint8(x).cpu().numpy())
        h, w = self.image_size
        images = np.concatenate(out) if out else np.zeros((0, h, w, 3), np.uint8)
        landmarks = np.repeat(self.landmarks[None], len(coeffs), axis=0)
        meta = [{"truncation_psi": self.psi, "truncation_cutoff": self.cutoff} for _ in range(len(coeffs))]
        return RenderResult(images=np.ascontiguousarray(images), landmarks=landmarks, meta=meta)
