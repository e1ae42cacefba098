"""The ArcFace five-point alignment template and similarity transforms onto it.

Every generator delivers images aligned the way face-recognition pipelines align real photos
(insightface's ``norm_crop``): eyes, nose tip and mouth corners mapped by a least-squares
similarity onto fixed positions. The 112x112 template is the standard one; other sizes scale it by
height and centre it horizontally, which for 112x96 gives the usual "x - 8" template of SphereFace
and the SynFace paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthface.options import normalise_size

ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],  # left eye (image left)
        [73.5318, 51.5014],  # right eye
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # left mouth corner
        [70.7299, 92.2041],  # right mouth corner
    ],
    dtype=np.float64,
)


def template_for(size: Any) -> np.ndarray:
    """The five template points [5, 2] (x, y in pixels) for an image of ``size`` (h, w or "112x96")."""
    h, w = normalise_size(size)
    pts = ARCFACE_112 * (h / 112.0)
    pts[:, 0] += (w - h) / 2.0
    return pts


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) with dst ~ M @ [x, y, 1].

    Returns the 2x3 matrix. Closed form for 2D (Umeyama 1991 without reflection).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching [n>=2, 2] point sets, got {src.shape} and {dst.shape}")
    ms, md = src.mean(0), dst.mean(0)
    p, q = src - ms, dst - md
    den = (p**2).sum()
    if den == 0:
        raise ValueError("source points coincide; a similarity is undefined")
    a = (p * q).sum() / den
    b = (p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]).sum() / den
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (md - rot @ ms)[:, None]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 transform to points [n, 2]."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]
