"""Contact sheets: what a build with given sampling options will look like, before building it.

Rows are identities, columns images of that identity, drawn by the same ``Sampler`` a build uses
(so mixup, factor modes and pose ranges show exactly as they will be in the dataset); a last row
morphs identity 0 into identity 1 (phi from 1 to 0) with everything else held fixed, which shows
what identity mixup interpolates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from synthface.errors import SynthError

from . import layout, registry
from .sampler import Sampler, SamplingConfig


def morph_records(sampler: Sampler, steps: int, i: int = 0, j: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Records that morph identity i into j (phi = 1 .. 0), other factors from image (i, 0)."""
    base = sampler.batch([(i, 0)]).coeffs[0]
    phis = np.linspace(1.0, 0.0, steps) if steps > 1 else np.ones(1)
    out = np.repeat(base[None, :], len(phis), axis=0)
    a, b = sampler.identity(i), sampler.identity(j)
    for n, phi in enumerate(phis):
        out[n, layout.IDENTITY] = (np.float32(phi) * a + np.float32(1.0 - phi) * b).astype(np.float32)
    return out, phis


def contact_sheet(
    cfg: SamplingConfig,
    ids: int = 6,
    per_id: int = 8,
    seed: int = 0,
    generator: str = "morphable",
    image_size: Any = 112,
    options: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Image.Image:
    """The sheet as a PIL image of (ids + 1) x per_id tiles (the last row is the morph 0 -> 1)."""
    if ids < 2:
        raise SynthError(f"a preview needs at least 2 identities (the last row morphs identity 0 into 1), got {ids}")
    if per_id < 1:
        raise SynthError(f"images per identity must be at least 1, got {per_id}")
    backend, sampler = registry.create_with_sampler(generator, cfg, ids, seed, image_size=image_size, options=options)
    h, w = backend.image_size
    sheet = np.zeros(((ids + 1) * h, per_id * w, 3), np.uint8)
    total = ids + 1
    for row in range(ids):
        recs = sampler.batch([(row, k) for k in range(per_id)]).coeffs
        _paste(sheet, backend.render(recs).images, row, h, w)
        if progress:
            progress(row + 1, total)
    recs, _ = morph_records(sampler, per_id)
    _paste(sheet, backend.render(recs).images, ids, h, w)
    if progress:
        progress(total, total)
    return Image.fromarray(sheet)


def _paste(sheet: np.ndarray, images: np.ndarray, row: int, h: int, w: int) -> None:
    for k, img in enumerate(images):
        sheet[row * h : (row + 1) * h, k * w : (k + 1) * w] = img


def write_sheet(image: Image.Image, out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise SynthError(f"preview output {str(out)!r} must be a .png file")
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out
