"""``morphable``: the built-in generator, a procedural 3D morphable head and a CPU renderer.

It needs no model weights and renders about 2,000-2,100 aligned 112x112 faces per second per core,
which makes a from-scratch SynFace-style dataset practical on ordinary machines.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthface.errors import SynthError

from .. import layout
from ..align import template_for
from ..registry import Backend, RenderResult
from .basis import N_APPEARANCE, N_EXPR, N_SHAPE
from .model import build_model
from .raster import blend
from .render import attribute_rows, expression_coeffs, render_batch


# The albedo values after the named appearance ones weight the colour modulation fields.
ALBEDO_FIELDS = slice(layout.SLICES["albedo"].start + N_APPEARANCE, layout.SLICES["albedo"].stop)


class MorphableBackend(Backend):
    """Renders coefficient records with the procedural morphable head (see the package docstring).

    The model is built and the kernels compiled (or loaded from numba's on-disk cache) once per
    process, on first use; a record renders to the same pixels alone or in any batch. An instance
    keeps scratch buffers between calls, so it renders from one thread at a time (the pipeline runs
    one per worker process).
    """

    name = "morphable"
    version = "7"
    options: dict[str, Any] = {}

    def __init__(self, image_size: Any = 112, device: str = "cpu", **options: Any):
        super().__init__(image_size=image_size, device=device, **options)
        if device not in ("cpu", None):
            raise SynthError(f"generator 'morphable' renders on the CPU only (asked for device {device!r}): "
                             "drop --gpus-per-worker, or choose a GPU generator such as discofacegan")
        self.model = build_model()
        self.template = template_for(self.image_size).astype(np.float64)
        self._rows = attribute_rows(self.model.uv, self.model.front, self.model.basis.beard)

    def _scratch(self, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Blend buffers, kept between calls: fresh megabyte arrays per batch cost page faults."""
        bufs = getattr(self, "_bufs", None)
        if bufs is None or bufs[0].shape[0] != nb:
            n = self.model.mean.shape[0]
            bufs = (np.empty((nb, N_SHAPE + N_EXPR), np.float32), np.empty((nb, n), np.float32),
                    np.empty((nb, n), np.float32))
            self._bufs = bufs
        return bufs

    def render(self, coeffs: np.ndarray) -> RenderResult:
        coeffs = np.asarray(coeffs)
        if coeffs.ndim != 2 or coeffs.shape[1] != layout.TOTAL:
            raise SynthError(f"expected coefficient records of shape [batch, {layout.TOTAL}], got {list(coeffs.shape)}")
        if not np.isfinite(coeffs).all():
            raise SynthError("coefficient records contain NaN or infinite values")
        coeffs = np.ascontiguousarray(coeffs, dtype=np.float32)
        m, mesh = self.model, self.model.mesh
        nb = coeffs.shape[0]
        h, w = self.image_size
        weights, geo, albmod = self._scratch(nb)
        expression_coeffs(coeffs, m.one_sided, weights)
        blend(m.mean, *m.geo_blocks, weights, geo)
        blend(m.albedo_zero, *m.albedo_blocks, np.ascontiguousarray(coeffs[:, ALBEDO_FIELDS]), albmod)
        images = np.empty((nb, h, w, 3), np.uint8)
        landmarks = np.empty((nb, 5, 2), np.float64)
        visible = np.empty((nb, 5), np.bool_)
        tones = np.empty(nb, np.float64)
        render_batch(
            coeffs, geo, albmod, m.tris, m.two_sided, m.tri_flags, *m.features, m.uv, m.front, m.hair_w, m.basis.beard,
            m.basis.blush, m.basis.eye_area, m.basis.nose, m.basis.cavity, mesh.landmarks, mesh.landmark_w, self.template,
            m.tex_noise, images, landmarks, visible, tones, mesh.ear_range[0], self._rows,
        )
        # tolist() gives Python bools and floats in one step (per-element numpy scalars cost ~10 us a record).
        meta = [{"visible": v, "skin_tone": round(t, 3)} for v, t in zip(visible.tolist(), tones.tolist())]
        return RenderResult(images=images, landmarks=landmarks.astype(np.float32), meta=meta)
