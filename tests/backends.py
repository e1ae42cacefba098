"""Small generator backends for tests: fast, deterministic, numpy only.

``ShapesBackend`` draws a face-like ellipse whose colour, size, position and features follow the
coefficients, so different records give visibly different images and the same record always gives
the same pixels. ``FaultyBackend`` adds injected faults keyed on a record's first noise value
(tests compute it from the plan and sampler), so a fault hits one chosen shard wherever it runs.
``LevelBackend`` renders flat images whose grey level shows which generator options reached its
prior and the backend itself.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from synthface.generator import layout
from synthface.generator.registry import Backend, RenderResult
from synthface.generator.sampler import GaussianPrior

ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


class ShapesBackend(Backend):
    name = "shapes"
    version = "1"
    options = {"delay_ms": 0.0}

    def render(self, coeffs: np.ndarray) -> RenderResult:
        h, w = self.image_size
        f = layout.split(np.asarray(coeffs, dtype=np.float32))
        n = coeffs.shape[0]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        yy, xx = yy / h, xx / w
        images = np.empty((n, h, w, 3), dtype=np.uint8)
        landmarks = np.empty((n, 5, 2), dtype=np.float32)
        for b in range(n):
            pitch, yaw, roll = f["pose"][b]
            bg = 96 + 40 * np.tanh(f["noise"][b, :3])
            skin = 150 + 60 * np.tanh(f["albedo"][b, :3])
            cx, cy = 0.5 + 0.3 * np.sin(yaw), 0.55 + 0.3 * np.sin(pitch)
            rx, ry = 0.28 + 0.04 * np.tanh(f["shape"][b, 0]), 0.36 + 0.04 * np.tanh(f["shape"][b, 1])
            face = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1.0
            light = 1.0 + 0.3 * np.tanh(f["lighting"][b, 0]) * (xx - 0.5)
            img = np.where(face[..., None], skin[None, None, :] * light[..., None], bg[None, None, :])
            mouth = (np.abs(yy - cy - 0.18) < 0.02 + 0.02 * abs(np.tanh(f["expression"][b, 0]))) & (np.abs(xx - cx) < 0.1)
            img[mouth] = (120, 40, 40)
            for ex in (-0.1, 0.1):
                eye = ((xx - cx - ex) ** 2 + (yy - cy + 0.08) ** 2) < 0.0015 * (1 + 0.3 * np.tanh(f["shape"][b, 2]))
                img[eye] = (30, 30, 30)
            images[b] = np.clip(img, 0, 255).astype(np.uint8)
            landmarks[b] = ARCFACE_112 * np.array([w / 112.0, h / 112.0], dtype=np.float32) + np.float32(roll)
        if self.opts["delay_ms"]:
            time.sleep(self.opts["delay_ms"] * n / 1000.0)
        return RenderResult(images=images, landmarks=landmarks, meta=[{"shapes": True} for _ in range(n)])


class _LevelPrior(GaussianPrior):
    def __init__(self, cfg, level: float):
        super().__init__(cfg)
        self.level = np.float32(level)

    def identity(self, rng: np.random.Generator) -> np.ndarray:
        return np.full(layout.IDENTITY_SIZE, self.level, np.float32)


class LevelBackend(Backend):
    """Flat grey images whose level shows which options reached it: every identity value is the
    prior's ``level``, and a pixel is that value plus the backend's ``offset``."""

    name = "level"
    version = "1"
    options = {"level": 0.0, "offset": 0.0}

    @classmethod
    def prior(cls, cfg, **options):
        return _LevelPrior(cfg, options.get("level", cls.options["level"]))

    def render(self, coeffs: np.ndarray) -> RenderResult:
        h, w = self.image_size
        value = np.clip(np.asarray(coeffs)[:, layout.IDENTITY.start] + self.opts["offset"], 0, 255)
        images = np.broadcast_to(value.astype(np.uint8)[:, None, None, None], (len(coeffs), h, w, 3)).copy()
        landmarks = np.broadcast_to(ARCFACE_112 * np.float32(w / 112.0), (len(coeffs), 5, 2)).copy()
        return RenderResult(images=images, landmarks=landmarks)


class FaultyBackend(ShapesBackend):
    """ShapesBackend that fails on records whose noise[0] equals ``fail_on`` (to 1e-6).

    ``mode``: ``raise`` (an exception) or ``exit`` (the process dies with ``os._exit``).
    ``marker``: a file path; if set, the fault fires only while the file does not exist and
    creates it, so the first attempt fails and the retry succeeds. Empty: fail every time.
    """

    name = "faulty"
    options = {**ShapesBackend.options, "fail_on": None, "mode": "raise", "marker": ""}

    def render(self, coeffs: np.ndarray) -> RenderResult:
        target = self.opts["fail_on"]
        if target is not None and np.any(np.abs(coeffs[:, layout.SLICES["noise"].start] - np.float32(target)) < 1e-6):
            marker = self.opts["marker"]
            if not marker or not os.path.exists(marker):
                if marker:
                    with open(marker, "w") as f:
                        f.write(str(os.getpid()))
                if self.opts["mode"] == "exit":
                    os._exit(17)
                raise RuntimeError(f"injected fault on record with noise[0]={target}")
        return super().render(coeffs)


def noise0(cfg: Any, shard: int) -> float:
    """noise[0] of the first record of ``shard`` under ``cfg`` (a BuildConfig): the fault trigger."""
    from synthface.generator.sampler import Sampler
    from synthface.pipeline import plan

    cls, img = plan.shard_samples(cfg, shard)
    batch = Sampler(cfg.sampling, cfg.ids, cfg.seed).batch([(cls[0], img[0])])
    return float(batch.coeffs[0, layout.SLICES["noise"].start])
