"""Backgrounds and camera nuisance driven by the 32 noise coefficients.

A recogniser must not be able to tell identities (or real from synthetic) by what is behind the
head, so every image gets its own: a two-colour gradient, three soft out-of-focus blobs and one
blurred rectangular shape (door frames, windows, posters), in mostly muted colours as in web
photos. Sensor noise and a white-balance shift finish the image. Everything is a pure function of
the record's noise coefficients, so it is reproducible per image.
"""

from __future__ import annotations

import math

from numba import njit

from .simd import clip01, lane_at, vec4

# Indices into the noise block (the gaze pair is read by ``render._gaze``; 3-28 are the background's).
N_DISTANCE, N_GAZE_U, N_GAZE_V, N_WB, N_SENSOR, N_SEED = 0, 1, 2, 29, 30, 31
BG_PARAMS = 40


@njit(cache=True, fastmath=True, inline="always")
def phi(z):
    """Standard normal CDF: turns a N(0, 1) coefficient into a uniform number."""
    return 0.5 * (1.0 + math.erf(z * 0.7071067811865476))


@njit(cache=True, fastmath=True)
def hsv(h, s, v, out, o):
    h = (h - math.floor(h)) * 6.0
    i = int(h)
    f = h - i
    p, q, t = v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f))
    if i == 0:
        r, g, b = v, t, p
    elif i == 1:
        r, g, b = q, v, p
    elif i == 2:
        r, g, b = p, v, t
    elif i == 3:
        r, g, b = p, q, v
    elif i == 4:
        r, g, b = t, p, v
    else:
        r, g, b = v, p, q
    out[o], out[o + 1], out[o + 2] = r, g, b


@njit(cache=True, fastmath=True)
def background_params(noise, h, w, out):
    """Fill ``out`` [BG_PARAMS] from a record's noise block for an h x w image."""
    for k in range(2):  # gradient end colours: mostly muted, sometimes saturated
        z = noise[3 + 3 * k : 6 + 3 * k]
        hsv(phi(z[0]) * 1.3, 0.55 * phi(z[1]) ** 2, 0.12 + 0.8 * phi(z[2]), out, 3 * k)
    ang = 2.0 * math.pi * phi(noise[9])
    out[6], out[7] = math.cos(ang) / w, math.sin(ang) / h
    for k in range(3):  # blobs: x, y, 1/r^2, strength, colour
        z = noise[10 + 4 * k : 14 + 4 * k]
        o = 8 + 7 * k
        out[o] = phi(z[0]) * w
        out[o + 1] = phi(z[1]) * h
        r = (0.12 + 0.35 * phi(z[2])) * w
        out[o + 2] = 1.0 / (r * r)
        out[o + 3] = 0.6 * (phi(z[3]) - 0.3)
        hsv(phi(z[0] + z[3]) * 1.7, 0.5 * phi(z[1] - z[2]), 0.3 + 0.7 * phi(z[2] + z[0]), out, o + 4)
    # Rectangle: left, right, top, bottom (pixels), softness, colour.
    x0, x1 = phi(noise[22]) * w, phi(noise[23]) * w
    y0, y1 = phi(noise[24]) * h - 0.3 * h, phi(noise[25]) * h + 0.3 * h
    out[29], out[30] = min(x0, x1), max(x0, x1)
    out[31], out[32] = min(y0, y1), max(y0, y1)
    out[33] = 1.0 / (0.5 + 4.0 * phi(noise[26]))
    hsv(phi(noise[27]) * 1.5, 0.4 * phi(noise[28]), 0.1 + 0.85 * phi(noise[26] - noise[27]), out, 34)
    out[37] = 0.05 * noise[N_WB]  # white balance shift
    out[38] = (0.6 + 2.6 * phi(noise[N_SENSOR])) / 255.0  # sensor noise sigma
    out[39] = 0.0


@njit(cache=True, inline="always")
def hash_uniform(seed, i):
    """A uniform number in [0, 1) from (seed, i): counter-based, so order and batch do not matter."""
    x = (seed * 0x9E3779B1 + i * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    x = (x * 0x297A2D39) & 0xFFFFFFFF
    x ^= x >> 15
    return x / 4294967296.0


@njit(cache=True, fastmath=True, error_model="numpy")
def background_grid(bp, grid):
    """Background colours at the nodes of a 4-pixel grid ([rows, cols, 4]: node (i, j) is pixel
    (4 i, 4 j); RGB and an unused lane) from the parameters of ``background_params``: the gradient
    between two colours, three soft blobs mixed over it, then the soft-edged rectangle.

    Four nodes of a column at a time in vector lanes (``simd``): LLVM leaves the scalar loop scalar,
    and in vectors the whole grid costs less than the half of it a render reads did (~2% of a
    render), so every node is computed and no map of the cells that show background is kept. The
    operations are those of the scalar per-node function this replaced, lane by lane; lanes run down
    a column so that the products LLVM regroups (fast math) come out as they did there, except one
    product where two soft edges of the rectangle meet, which can differ in its last bit (8 of
    183,168 node values when this was measured), far below an output level.
    """
    gh, gw = grid.shape[0], grid.shape[1]
    s = bp[33]
    for gx in range(gw):
        x = 4.0 * gx
        t0 = x * bp[6] + 0.5
        for gy in range(0, gh, 4):
            y = vec4(4.0 * gy, 4.0 * gy + 4.0, 4.0 * gy + 8.0, 4.0 * gy + 12.0)
            ax = min(max((x - bp[29]) * s, 0.0), 1.0) * min(max((bp[30] - x) * s, 0.0), 1.0)
            t = clip01(t0 + y * bp[7])
            r = bp[0] + (bp[3] - bp[0]) * t
            g = bp[1] + (bp[4] - bp[1]) * t
            b = bp[2] + (bp[5] - bp[2]) * t
            for k in range(3):
                o = 8 + 7 * k
                dx, dy = x - bp[o], y - bp[o + 1]
                a = bp[o + 3] / (1.0 + (dx * dx + dy * dy) * bp[o + 2])
                r = r + (bp[o + 4] - r) * a
                g = g + (bp[o + 5] - g) * a
                b = b + (bp[o + 6] - b) * a
            a = ax * (clip01((y - bp[31]) * s) * clip01((bp[32] - y) * s)) * 0.85
            r = r + (bp[34] - r) * a
            g = g + (bp[35] - g) * a
            b = b + (bp[36] - b) * a
            for j in range(min(4, gh - gy)):
                grid[gy + j, gx, 0] = lane_at(r, j)
                grid[gy + j, gx, 1] = lane_at(g, j)
                grid[gy + j, gx, 2] = lane_at(b, j)
                grid[gy + j, gx, 3] = 0.0
