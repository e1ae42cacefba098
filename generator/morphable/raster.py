"""Compiled geometry kernels: the component blend and a z-buffered triangle rasteriser.

Both run per sample with a fixed order of operations, so a sample's arithmetic never depends on
which other samples share its batch (no BLAS, whose summation order can change with batch
size). The rasteriser snaps vertices to a sub-pixel grid and works in exact integer edge
functions, so two triangles sharing an edge compute exactly negated values and no pixel falls
between them.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .simd import BLOCK, add_scaled_block


def sparse_blocks(basis: np.ndarray, tol: float = 2e-3, gap: int = 6):
    """Pack components [K, n] as fixed-size blocks of their non-negligible entries.

    Most components are local (a nose, a lip, a brow), so a face touches only a few percent of
    the dense basis. Values below ``tol`` (cm, or relative colour) are dropped unless they lie
    within ``gap`` of kept ones; the kept entries go into blocks of ``BLOCK`` values starting at
    multiples of BLOCK (the last at n - BLOCK), with zeros where an entry was dropped or lies in
    the next block. Fixed-size blocks add as two vector operations each, without the loop exits
    and remainders that made variable-length runs ~40% slower; every entry is in exactly one block,
    so each value is still the sum of its kept entries in component order.
    Returns (block_ptr [K + 1], starts [B] int64, values [B, BLOCK] float32).
    """
    k_count, n = basis.shape
    if n < BLOCK:
        raise ValueError(f"a sparse blend needs at least {BLOCK} values per component, got {n}")
    ptr, starts, vals = [0], [], []
    for k in range(k_count):
        nz = np.flatnonzero(np.abs(basis[k]) >= tol)
        keep = np.zeros(n, bool)
        if len(nz):
            breaks = np.flatnonzero(np.diff(nz) > gap)
            for s, e in zip(np.concatenate([[nz[0]], nz[breaks + 1]]), np.concatenate([nz[breaks], [nz[-1]]]) + 1):
                keep[s:e] = True
        idx = np.flatnonzero(keep)
        first, which = np.unique(np.minimum(idx // BLOCK * BLOCK, n - BLOCK), return_inverse=True)
        rows = np.zeros((len(first), BLOCK), np.float32)
        rows[which, idx - first[which]] = basis[k, idx]
        starts.append(first)
        vals.append(rows)
        ptr.append(ptr[-1] + len(first))
    return np.array(ptr, np.int64), np.concatenate(starts).astype(np.int64), np.concatenate(vals)


@njit(cache=True, fastmath=True)
def blend(mean, block_ptr, starts, values, coeffs, out):
    """out[b] = mean + sum_k coeffs[b, k] * basis[k], each value summed in component order.

    One sample at a time over the blocks of ``sparse_blocks``: a sample's arithmetic does not
    depend on its batch, and zero coefficients (most expression ones) cost nothing.
    """
    nb, nk = coeffs.shape
    for b in range(nb):
        o = out[b]
        o[:] = mean
        for k in range(nk):
            c = coeffs[b, k]
            if c == 0.0:
                continue
            for j in range(block_ptr[k], block_ptr[k + 1]):
                add_scaled_block(o, starts[j], c, values, j)


@njit(cache=True, fastmath=True, error_model="numpy")
def vertex_normals(verts, tris, used, out):
    """Area-weighted vertex normals of a [N, 3] mesh (unnormalised faces, normalised result).

    Only vertices with ``used[v]`` (those of triangles that reached a pixel) get a normal: a face
    is accumulated when it touches one of them, which still gives each of them the sum over all
    its faces in triangle order, so the result does not depend on what else is visible. The back
    of the head, about half the mesh, is skipped.
    """
    out[:] = 0.0
    for t in range(tris.shape[0]):
        a, b, c = np.uint64(tris[t, 0]), np.uint64(tris[t, 1]), np.uint64(tris[t, 2])  # see rasterise
        if not (used[a] or used[b] or used[c]):
            continue
        e1x = verts[b, 0] - verts[a, 0]
        e1y = verts[b, 1] - verts[a, 1]
        e1z = verts[b, 2] - verts[a, 2]
        e2x = verts[c, 0] - verts[a, 0]
        e2y = verts[c, 1] - verts[a, 1]
        e2z = verts[c, 2] - verts[a, 2]
        nx = e1y * e2z - e1z * e2y
        ny = e1z * e2x - e1x * e2z
        nz = e1x * e2y - e1y * e2x
        for v in (a, b, c):
            out[v, 0] += nx
            out[v, 1] += ny
            out[v, 2] += nz
    for v in range(out.shape[0]):
        if not used[v]:
            continue
        ln = math.sqrt(out[v, 0] ** 2 + out[v, 1] ** 2 + out[v, 2] ** 2) + 1e-12
        out[v, 0] /= ln
        out[v, 1] /= ln
        out[v, 2] /= ln


# Vertices are snapped to 1/16 pixel before rasterising: edge functions are then exact integers.
SUBPIXEL_BITS = 4
SUBPIXEL = 1 << SUBPIXEL_BITS


@njit(cache=True, fastmath=True, error_model="numpy")
def rasterise(px, py, pz, tris, two_sided, zbuf, tid, bary):
    """Nearest-surface triangle id and barycentrics per pixel centre (pixel (i, j) is at x=j, y=i).

    ``pz`` is the camera distance (smaller is nearer). One-sided triangles are culled when they face
    away (before any other set-up): the mesh is counter-clockwise from outside, which is clockwise
    in y-down pixel space. Vertices are snapped to a 1/16-pixel grid so that the edge functions are
    exact integers, as in hardware rasterisers: two triangles sharing an edge compute exactly
    negated values, a pixel on the edge is claimed by both (the z-test picks one), so there are no
    pinholes; and stepping along a row is an exact integer add, where floats would drift. At
    face-image sizes a triangle covers a few pixels, so testing every pixel of its bounding box is
    cheaper than solving for each row's span.
    """
    h, w = zbuf.shape
    zbuf[:] = np.inf
    tid[:] = -1
    n = px.shape[0]
    qx = np.empty(n, np.int64)
    qy = np.empty(n, np.int64)
    for i in range(n):
        qx[i] = int(math.floor(px[i] * SUBPIXEL + 0.5))
        qy[i] = int(math.floor(py[i] * SUBPIXEL + 0.5))
    for t in range(tris.shape[0]):
        # Unsigned indices: numba then leaves out its negative-index (wraparound) arithmetic.
        i0, i1, i2 = np.uint64(tris[t, 0]), np.uint64(tris[t, 1]), np.uint64(tris[t, 2])
        x0, y0, x1, y1, x2, y2 = qx[i0], qy[i0], qx[i1], qy[i1], qx[i2], qy[i2]
        area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        if area < 0:
            sgn = -1
        elif area > 0 and two_sided[t]:
            sgn = 1
        else:
            continue
        # Pixel range: ceil and floor of the bounding box in pixels (>> floors, also below zero).
        xmin = max(-((-min(x0, x1, x2)) >> SUBPIXEL_BITS), 0)
        xmax = min(max(x0, x1, x2) >> SUBPIXEL_BITS, w - 1)
        if xmin > xmax:
            continue
        ymin = max(-((-min(y0, y1, y2)) >> SUBPIXEL_BITS), 0)
        ymax = min(max(y0, y1, y2) >> SUBPIXEL_BITS, h - 1)
        if ymin > ymax:
            continue
        # Edge k is opposite vertex k; its function is >= 0 inside (and on the edge).
        a0x, a0y = sgn * (x2 - x1), sgn * (y2 - y1)
        a1x, a1y = sgn * (x0 - x2), sgn * (y0 - y2)
        a2x, a2y = sgn * (x1 - x0), sgn * (y1 - y0)
        sx = xmin * SUBPIXEL
        inv = 1.0 / (sgn * area)
        z0, z1, z2 = pz[i0], pz[i1], pz[i2]
        # Edge values at the start of the first row, then stepped per row and per pixel by exact
        # integer adds (no multiplies in the row set-up: ~4% of the rasteriser).
        sy = ymin * SUBPIXEL
        r0 = a0x * (sy - y1) - a0y * (sx - x1)
        r1 = a1x * (sy - y2) - a1y * (sx - x2)
        r2 = a2x * (sy - y0) - a2y * (sx - x0)
        s0, s1, s2 = a0x * SUBPIXEL, a1x * SUBPIXEL, a2x * SUBPIXEL
        for yi in range(ymin, ymax + 1):
            e0, e1, e2 = r0, r1, r2
            r0 += s0
            r1 += s1
            r2 += s2
            yu = np.uint64(yi)
            inside = False
            for xi in range(xmin, xmax + 1):
                if (e0 | e1 | e2) < 0:
                    if inside:
                        break  # past the row's span: a triangle is convex
                else:
                    inside = True
                    xu = np.uint64(xi)
                    b0 = e0 * inv
                    b1 = e1 * inv
                    z = b0 * z0 + b1 * z1 + (1.0 - b0 - b1) * z2
                    if z < zbuf[yu, xu]:
                        zbuf[yu, xu] = z
                        tid[yu, xu] = t
                        bary[yu, xu, 0] = b0
                        bary[yu, xu, 1] = b1
                e0 -= a0y * SUBPIXEL
                e1 -= a1y * SUBPIXEL
                e2 -= a2y * SUBPIXEL
