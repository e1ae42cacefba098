"""The assembled morphable model: mean head, components, detail textures, per-triangle flags.

Built in code from a fixed seed (about a second), once per process; nothing is downloaded or read
from disk, so the model is the same wherever the package is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .basis import N_APPEARANCE, ONE_SIDED_EXPR, Basis, build_basis
from .mesh import EYE_X, MOUTH_Y, PART_EAR, Mesh, build_mesh
from .raster import sparse_blocks
from .shading import F_BROW, F_EYE, F_GLASSES, F_MOUTH, F_NOSTRIL, F_WRINKLE, feature_boxes, hair_weights, uv_boxes
from .textures import SENSOR_NOISE


@dataclass
class Model:
    mesh: Mesh
    basis: Basis
    mean: np.ndarray  # [N*3] float32
    geo_blocks: tuple  # sparse blocks of the 144 shape-then-expression components (raster.sparse_blocks)
    albedo_blocks: tuple  # sparse blocks of the random colour fields
    albedo_zero: np.ndarray  # [N*3] float32
    one_sided: np.ndarray  # [64] bool
    tris: np.ndarray  # [T, 3] int32
    two_sided: np.ndarray  # [T] bool
    tri_flags: np.ndarray  # [T] int32
    features: tuple  # the flagged triangles' terms for shading.feature_reach (shading.feature_boxes)
    uv: np.ndarray  # [N, 2] float64
    front: np.ndarray  # [N] float64
    hair_w: np.ndarray  # [N, 7] static hairline terms (shading.hair_weights)
    tex_noise: np.ndarray  # [256, 256] float32 unit-variance sensor noise (textures.SENSOR_NOISE)


def _tri_flags(mesh: Mesh) -> np.ndarray:
    """Which painted features each triangle can show (``shading.F_*``), from its (|u|, v) box.

    A pixel's (u, v) lies in its triangle's box, so a feature's flag is needed only where the box
    meets the region in which ``shading.paint``'s checks for that feature can pass: |u| within
    EYE_X +- 1.75 for the eyes, 0.7-5.6 for the brows, below MOUTH_HALF_W + 0.2 for the mouth, and
    the nostrils' two ellipses (|u| 0.20-1.04, v -4.54 to -4.10), each with 0.01 cm to spare. The
    v ranges of the eyes, brows and mouth depend on the identity and expression and are the
    widest they reach. Pixels of unflagged triangles skip the feature's code, which is most of
    its cost; the images do not depend on these boxes as long as they are wide enough.
    """
    lo, hi, alo, ahi = uv_boxes(mesh.uv, mesh.tris)

    def box(u0, u1, v0, v1):
        return (ahi >= u0) & (alo <= u1) & (hi[:, 1] >= v0) & (lo[:, 1] <= v1)

    head = mesh.part != PART_EAR
    flags = np.zeros(len(mesh.tris), np.int32)
    flags |= np.where(box(EYE_X - 1.76, EYE_X + 1.76, -1.3, 1.4) & head, F_EYE, 0)
    flags |= np.where(box(0.69, 5.61, 0.3, 3.4) & head, F_BROW, 0)
    flags |= np.where(box(0.0, 2.81, MOUTH_Y - 1.6, MOUTH_Y + 1.3) & head, F_MOUTH, 0)
    flags |= np.where(box(0.19, 1.05, -4.55, -4.09) & head, F_NOSTRIL, 0)
    # Glasses (lenses, bridge and arms, with room for the frame and a pixel at small sizes) and
    # wrinkles (forehead, crow's feet, nasolabial folds): see shading._glasses and _wrinkles.
    flags |= np.where(box(0.0, 8.6, -2.8, 3.3) & head, F_GLASSES, 0)
    wrinkle = box(0.0, 4.71, 1.89, 5.21) | box(EYE_X + 1.34, EYE_X + 2.81, -1.11, 1.11) | box(1.3, 4.3, -8.31, -3.79)
    flags |= np.where(wrinkle & head, F_WRINKLE, 0)
    return flags


@lru_cache(maxsize=1)
def build_model() -> Model:
    mesh = build_mesh()
    basis = build_basis(mesh)
    one_sided = np.zeros(64, bool)
    one_sided[list(ONE_SIDED_EXPR)] = True
    n = len(mesh.verts)
    flags = _tri_flags(mesh)
    return Model(
        mesh=mesh,
        basis=basis,
        mean=np.ascontiguousarray(mesh.verts.reshape(-1).astype(np.float32)),
        geo_blocks=sparse_blocks(np.concatenate([basis.shape, basis.expr])),
        albedo_blocks=sparse_blocks(basis.albedo),
        albedo_zero=np.zeros(n * 3, np.float32),
        one_sided=one_sided,
        tris=np.ascontiguousarray(mesh.tris),
        two_sided=mesh.part == PART_EAR,
        tri_flags=flags,
        features=feature_boxes(mesh.uv, mesh.tris, flags),
        uv=np.ascontiguousarray(mesh.uv.astype(np.float64)),
        front=mesh.front.astype(np.float64),
        hair_w=np.ascontiguousarray(hair_weights(mesh.uv[:, 0], mesh.front)),
        tex_noise=SENSOR_NOISE,
    )


__all__ = ["Model", "build_model", "N_APPEARANCE"]
