"""Time of the ``morphable`` rasteriser alone, on fixed views of the mean head.

    python bench/bench_raster.py [--size 112] [--repeats 300]

A full render mixes the rasteriser with shading, lighting and the blend, and on a shared machine
its timing wanders by several percent; this isolates the rasteriser on five fixed head turns
(yaw -0.5 .. 0.6 rad, the aligned face's scale), so A/B comparisons of raster changes resolve ~1%.
Prints the best time per view over ``--repeats`` passes, the renders/s that time alone would
allow, and the triangle and pixel counts behind it.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from synthface.generator.morphable.model import build_model  # noqa: E402
from synthface.generator.morphable.raster import rasterise  # noqa: E402

YAWS = (-0.5, -0.2, 0.0, 0.3, 0.6)


def views(verts: np.ndarray, size: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Perspective views at a 65 cm camera distance, eyes ~0.32 of the width apart, as aligned."""
    out = []
    scale = 65.0 * 5.7 * size / 112.0  # ~5.7 px per cm at 112x112
    for yaw in YAWS:
        c, s = np.cos(yaw), np.sin(yaw)
        x = c * verts[:, 0] + s * verts[:, 2]
        z = -s * verts[:, 0] + c * verts[:, 2]
        zc = 65.0 - z
        out.append((size / 2 + scale * x / zc, size * 0.455 - scale * verts[:, 1] / zc, zc))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args()
    m = build_model()
    h = w = args.size
    zbuf = np.empty((h, w), np.float32)
    tid = np.empty((h, w), np.int32)
    bary = np.empty((h, w, 2), np.float32)
    vs = views(m.mesh.verts, args.size)
    covered = []
    for px, py, pz in vs:  # compile or load, and count
        rasterise(px, py, pz, m.tris, m.two_sided, zbuf, tid, bary)
        covered.append(int((tid >= 0).sum()))
    best = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for px, py, pz in vs:
            rasterise(px, py, pz, m.tris, m.two_sided, zbuf, tid, bary)
        best = min(best, (time.perf_counter() - t0) / len(vs))
    print(f"rasterise {args.size}x{args.size}, {len(m.tris)} triangles, {np.mean(covered):.0f} covered pixels per view")
    print(f"best {best * 1e3:.4f} ms per view -> {1.0 / best:,.0f} views/s per core (rasteriser alone)")


if __name__ == "__main__":
    main()
