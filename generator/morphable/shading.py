"""Per-pixel appearance: spherical-harmonics lighting, specular highlights and the painted details.

Lighting follows the Deep3DFaceReconstruction renderer exactly (the convention DiscoFaceGAN's
coefficients were fitted in): irradiance per channel = sum_k Y_k(n) * gamma[c, k] with
Y = [a0 c0, -a1 c1 y, a1 c1 z, -a1 c1 x, a2 c2 xy, -a2 c2 yz, a2 c2 (3z^2 - 1) / (2 sqrt 3),
-a2 c2 xz, a2 c2 (x^2 - y^2) / 2], a = (pi, 2 pi / sqrt 3, 2 pi / sqrt 8),
c = (1 / sqrt(4 pi), sqrt 3 / sqrt(4 pi), 3 sqrt 5 / sqrt(12 pi)), and 0.8 added to each gamma[c, 0].
Colour = albedo * irradiance, as in that renderer, plus a Blinn-Phong highlight from the dominant
light direction the first-order coefficients imply (skin is not Lambertian; the sheen helps both
realism and a detector's view of the face's 3D shape).

Eyes, brows, lips, nostrils, the hairline and stubble are drawn per pixel in face-plane coordinates
with edges smoothed over one pixel footprint, so they stay crisp and anti-aliased at any image size
and move with the mesh under identity and expression deformations.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .mesh import EYE_X, EYE_Y, MOUTH_GAP, MOUTH_HALF_W, MOUTH_Y
from .simd import vec3
from .textures import DETAIL, HAIR_STEP, SKIN_STEP

_A0C0 = math.pi / math.sqrt(4.0 * math.pi)
_A1C1 = (2.0 * math.pi / math.sqrt(3.0)) * (math.sqrt(3.0) / math.sqrt(4.0 * math.pi))
_A2C2 = (2.0 * math.pi / math.sqrt(8.0)) * (3.0 * math.sqrt(5.0) / math.sqrt(12.0 * math.pi))
_Y6 = 0.5 * _A2C2 / math.sqrt(3.0)

# Triangle feature flags (which painted details a triangle can contain).
F_EYE, F_BROW, F_MOUTH, F_NOSTRIL = 1, 2, 4, 8


@njit(cache=True, fastmath=True, inline="always")
def smoothstep(e0, e1, x):
    t = (x - e0) / (e1 - e0)
    if t <= 0.0:
        return 0.0
    if t >= 1.0:
        return 1.0
    return t * t * (3.0 - 2.0 * t)


@njit(cache=True, fastmath=True)
def sh_rgb(gamma):
    """The 27 lighting coefficients ``gamma`` [3, 9] (with the +0.8 DC offset) as nine ``simd.Vec4``,
    one per basis function, the three channels in lanes 0-2 (for ``sh_irradiance``)."""
    return (
        vec3(gamma[0, 0], gamma[1, 0], gamma[2, 0]),
        vec3(gamma[0, 1], gamma[1, 1], gamma[2, 1]),
        vec3(gamma[0, 2], gamma[1, 2], gamma[2, 2]),
        vec3(gamma[0, 3], gamma[1, 3], gamma[2, 3]),
        vec3(gamma[0, 4], gamma[1, 4], gamma[2, 4]),
        vec3(gamma[0, 5], gamma[1, 5], gamma[2, 5]),
        vec3(gamma[0, 6], gamma[1, 6], gamma[2, 6]),
        vec3(gamma[0, 7], gamma[1, 7], gamma[2, 7]),
        vec3(gamma[0, 8], gamma[1, 8], gamma[2, 8]),
    )


@njit(cache=True, fastmath=True, inline="always")
def sh_irradiance(G, nx, ny, nz):
    """Irradiance per channel, sum_k Y_k(n) gamma[c, k], as a ``simd.Vec4`` (RGB in lanes 0-2), for
    ``G`` from ``sh_rgb``: one vector multiply-add per basis function instead of one per channel."""
    y0 = _A0C0
    y1 = -_A1C1 * ny
    y2 = _A1C1 * nz
    y3 = -_A1C1 * nx
    y4 = _A2C2 * nx * ny
    y5 = -_A2C2 * ny * nz
    y6 = _Y6 * (3.0 * nz * nz - 1.0)
    y7 = -_A2C2 * nx * nz
    y8 = 0.5 * _A2C2 * (nx * nx - ny * ny)
    return G[0] * y0 + G[1] * y1 + G[2] * y2 + G[3] * y3 + G[4] * y4 + G[5] * y5 + G[6] * y6 + G[7] * y7 + G[8] * y8


@njit(cache=True, fastmath=True, inline="always")
def _mix(c, target, a):
    """``c`` moved towards ``target`` by ``a`` (colours as ``simd.Vec4``)."""
    return c + (target - c) * a


@njit(cache=True, fastmath=True, inline="always")
def paint(c, u, v, front, level, flags, beard_w, P, aa):
    """Paint details over the interpolated skin albedo ``c`` (a ``simd.Vec4``, RGB in lanes 0-2).

    ``level`` is the height above the hairline (cm, see ``hair_level``). Returns the painted
    albedo, the specular strength, the shininess (0 skin .. 1 lips .. 2 eyes) and a self-shadow
    factor. ``aa`` is the pixel footprint in face-plane centimetres (edge softness).

    ``P`` is the identity's parameters as a tuple and the detail maps a global (``textures``):
    numba inlines at the level of its own IR, where every array handed to an inlined function costs
    an atomic reference-count increment and decrement per call, per pixel here.
    """
    spec, shin, occl = 0.10 * P[38], 0.0, 1.0
    au = abs(u)
    # Fine skin texture: pores and blotches from a tiling noise map, offset per identity.
    ti = int(u * 16.0 + P[39]) & 255
    tj = int(v * 16.0 + P[40]) & 255
    t = SKIN_STEP * (np.int32(DETAIL[0, tj, ti]) - 128)
    c = c * (1.0 + P[34] * t)
    # Stubble / beard.
    bd = beard_w * P[31]
    if bd > 0.01:
        hs = HAIR_STEP * DETAIL[1, (int(v * 40.0) & 255), (int(u * 40.0) & 255)]
        a = bd * (0.55 + 0.45 * hs)
        if a > 1.0:
            a = 1.0
        c = _mix(c, vec3(P[17] * 0.8, P[18] * 0.8, P[19] * 0.8), a * 0.85)
    if flags & F_MOUTH:
        dv = v - MOUTH_Y
        if au < MOUTH_HALF_W + 0.2:
            tt = au / MOUTH_HALF_W
            w2 = 1.0 - tt * tt
            if w2 < 0.0:
                w2 = 0.0
            r2 = math.sqrt(w2)  # powers as square roots: pow() is the slowest thing in a pixel
            hl = (0.95 + 0.1 * P[54]) * r2 * math.sqrt(r2)
            inside = 0.0
            # The lip outline (two exponentials) only where a lip can be: the cupid's bow term
            # is at most 0.1 * w2, so above that bound ``inside`` is exactly 0.
            if dv + hl > -aa and dv - abs(0.72 + 0.12 * P[54]) * r2 - 0.1 * w2 < aa + 1e-6:
                bow = 0.10 * math.exp(-((au - 0.38) / 0.22) ** 2) - 0.08 * math.exp(-(u / 0.18) ** 2)
                hu = (0.72 + 0.12 * P[54]) * r2 + bow * w2
                inside = smoothstep(-aa, aa, hu - dv) * smoothstep(-aa, aa, dv + hl)
            if inside > 0.0:
                shade = 1.0 - 0.35 * math.exp(-(dv / 0.16) ** 2)  # the seam is in shadow
                c = _mix(c, vec3(P[23] * shade, P[24] * shade, P[25] * shade), inside)
                spec = spec * (1.0 - inside) + 0.28 * inside
                shin = 1.0
            if abs(dv) < MOUTH_GAP and tt < 1.0:
                # Inside the mouth: teeth near the upper lip, then the dark oral cavity.
                s = (dv / MOUTH_GAP) * 0.5 + 0.5  # 1 at the upper lip, 0 at the lower
                # Teeth only once the lips part (P[57]); a closed seam stays a dark line.
                teeth = smoothstep(0.55, 0.7, s) * smoothstep(0.15, 0.4, w2) * P[57]
                c = vec3(0.10 + 0.62 * teeth, 0.035 + 0.60 * teeth, 0.04 + 0.55 * teeth)
                occl = 0.55
                spec = 0.15 * teeth
    if flags & F_NOSTRIL:
        for side in (-1.0, 1.0):
            du = (u - side * 0.62) / 0.33
            dv2 = (v + 4.32) / 0.17
            r2 = du * du + dv2 * dv2
            if r2 < 1.6:
                a = smoothstep(1.4, 0.6, r2)
                c = _mix(c, c * vec3(0.25, 0.2, 0.2), a)
    if flags & F_BROW:
        x = au - 1.0
        if -0.3 < x < 4.6:
            xn = x / 4.3
            half = (0.28 - 0.18 * xn) * (1.0 + 0.35 * P[30])
            if half < 0.04:
                half = 0.04
            # The arch term lies between 0 and ``arch`` (the sine's argument is in [0, pi]), so the
            # sine is needed only where the nearest possible centre line is close enough.
            arch = 0.45 * (1.0 + 0.4 * P[44])
            base = 1.5 - 0.25 * xn
            gap = max(v - base - max(arch, 0.0), base + min(arch, 0.0) - v, 0.0)
            if gap - half < 0.25 + 1e-6:
                xc = min(max(xn, 0.0), 1.0)
                centre = base + arch * math.sin(math.pi * math.sqrt(xc * math.sqrt(xc)))
                d = abs(v - centre) - half
                if d < 0.25:
                    hs = HAIR_STEP * DETAIL[1, (int(v * 45.0 + 17.0) & 255), (int(u * 12.0) & 255)]
                    m = smoothstep(aa + 0.05, -aa, d) * smoothstep(-0.3, 0.15, x) * smoothstep(4.6, 3.9, x)
                    a = m * P[29] * (0.65 + 0.35 * hs)
                    c = _mix(c, vec3(P[26], P[27], P[28]), a)
    if flags & F_EYE:
        side = 0 if u < 0.0 else 1
        du = au - EYE_X
        dv = v - EYE_Y
        hw = 1.45
        # Beyond this band (lid line at most 0.75 above the eye line, its crease 0.6 above that,
        # the lower lid at most 0.44 below) every term below is exactly zero.
        if abs(du) < hw + 0.3 and -0.5 - aa < dv < 1.4 + aa:
            tt = du / hw
            w2 = 1.0 - tt * tt
            if w2 < 0.0:
                w2 = 0.0
            op = P[45 + side]
            r2 = math.sqrt(w2)
            r4 = math.sqrt(r2)
            top = op * 0.52 * r2 * r4 * (1.0 - 0.18 * tt) + 0.04
            bot = -(0.36 + 0.06 * op) * w2 / math.sqrt(r4 + 1e-12) * (1.0 + 0.1 * tt) * min(op * 2.0, 1.0) + 0.04
            if top < bot:
                top = bot
            ins = smoothstep(-aa, aa, top - dv) * smoothstep(-aa, aa, dv - bot)
            # Lid shadow above and lashes on the upper lid line.
            lash = smoothstep(0.09 + aa, 0.0, abs(dv - top - 0.03)) * smoothstep(1.0, 0.6, abs(tt))
            crease = smoothstep(0.12, 0.0, abs(dv - top - 0.38 * op - 0.05)) * w2
            c = c * (1.0 - 0.18 * crease)
            if ins > 0.0:
                # Iris and pupil sit where the eye looks (P[47:51], see render._gaze): offset from the
                # eye's centre, foreshortened along the turn. Mirrored u, so the offset's sign flips
                # on the image-left eye.
                gu = (du - P[47] if side else du + P[47]) * P[49]
                gv = (dv - P[48]) * P[50]
                r = math.sqrt(gu * gu + gv * gv)
                # Sclera, pinker towards the corners; iris with a dark limbal ring; pupil.
                pink = smoothstep(0.5, 1.0, abs(tt))
                er, eg, eb = 0.72 - 0.05 * pink, 0.66 - 0.14 * pink - 0.05 * P[42], 0.62 - 0.14 * pink - 0.05 * P[42]
                ir = smoothstep(0.6 + aa, 0.6 - aa, r)
                if ir > 0.0:
                    ring = 0.55 + 0.45 * smoothstep(0.6, 0.42, r)
                    fib = 0.9 + 0.2 * HAIR_STEP * DETAIL[1, (int(math.atan2(gv, gu) * 40.0) & 255), (int(r * 60.0) & 255)]
                    pr = smoothstep(0.24 + aa, 0.24 - aa, r)
                    ir_r = P[20] * ring * fib * (1.0 - pr) + 0.02 * pr
                    ir_g = P[21] * ring * fib * (1.0 - pr) + 0.02 * pr
                    ir_b = P[22] * ring * fib * (1.0 - pr) + 0.02 * pr
                    er += (ir_r - er) * ir
                    eg += (ir_g - eg) * ir
                    eb += (ir_b - eb) * ir
                lid = 1.0 - 0.6 * smoothstep(top - 0.4, top, dv)  # the upper lid shades the eye
                c = _mix(c, vec3(er * lid, eg * lid, eb * lid), ins)
                spec = spec * (1.0 - ins) + 0.9 * ins
                shin = shin * (1.0 - ins) + 2.0 * ins
            a = lash * P[41]
            c = _mix(c, vec3(0.05, 0.04, 0.04), a if a < 1.0 else 1.0)
    # Hair: above the hairline (``level`` > 0, interpolated from the vertices), with a ragged edge.
    if level > -0.45:
        hs = HAIR_STEP * DETAIL[1, (int(v * 9.0) & 255), (int(u * 45.0 + front * 31.0) & 255)]
        lv = level + 0.25 * (hs - 0.5)
        if lv > -0.3:
            a = smoothstep(-0.25, 0.15, lv)
            g = 0.78 + 0.4 * hs
            c = _mix(c, vec3(P[17] * g, P[18] * g, P[19] * g), a)
            spec = spec * (1.0 - a) + 0.22 * a * hs
            shin = shin * (1.0 - a)
    return c, spec, shin, occl


# Which feature-flagged triangles a render can paint on. ``model._tri_flags`` flags a triangle for
# a feature where any identity or expression might put it there; most of the flagged pixels of a
# given render then fail the feature's band checks in ``paint``, and reaching those checks costs
# about as much as the painting. ``feature_reach`` clears a triangle's flag for this render where
# its (|u|, v) box cannot meet the feature's band for this identity, expression and pixel size.
# The bounds below follow ``paint``'s checks, a little wider (FEATURE_SLACK), so the images are
# the same as with the static flags; tests/test_morphable.py compares the two.
FEATURE_SLACK = 0.01


def uv_boxes(uv, tris):
    """Each triangle's (u, v) box, lo [T, 2] and hi [T, 2], and its |u| range (alo, ahi): a pixel's
    interpolated (u, v) lies inside its triangle's box."""
    tuv = uv[tris]
    lo, hi = tuv.min(axis=1), tuv.max(axis=1)
    alo = np.where((lo[:, 0] <= 0) & (hi[:, 0] >= 0), 0.0, np.minimum(np.abs(lo[:, 0]), np.abs(hi[:, 0])))
    ahi = np.maximum(np.abs(lo[:, 0]), np.abs(hi[:, 0]))
    return lo, hi, alo, ahi


def feature_boxes(uv, tris, flags):
    """Static per-triangle terms of ``feature_reach``: (ptr, tris, box) with the triangles flagged
    F_EYE, F_BROW and F_MOUTH in ptr[0]:ptr[1], ptr[1]:ptr[2], ptr[2]:ptr[3] of ``tris``, and per row
    of ``box``: |u| range, v range, the brow's xn range and the range of its arch's sine, and the
    mouth's largest r = sqrt(1 - (|u| / MOUTH_HALF_W)^2) and r^1.5."""
    lo, hi, alo, ahi = uv_boxes(uv, tris)
    xn_lo = (np.clip(alo, 0.7, 5.6) - 1.0) / 4.3
    xn_hi = (np.clip(ahi, 0.7, 5.6) - 1.0) / 4.3
    th_lo = np.pi * np.clip(xn_lo, 0.0, 1.0) ** 0.75
    th_hi = np.pi * np.clip(xn_hi, 0.0, 1.0) ** 0.75
    s_lo = np.minimum(np.sin(th_lo), np.sin(th_hi))
    s_hi = np.where((th_lo <= np.pi / 2) & (th_hi >= np.pi / 2), 1.0, np.maximum(np.sin(th_lo), np.sin(th_hi)))
    r2 = np.sqrt(np.maximum(1.0 - (alo / MOUTH_HALF_W) ** 2, 0.0))
    box = np.stack([alo, ahi, lo[:, 1], hi[:, 1], xn_lo, xn_hi, s_lo, s_hi, r2, r2**1.5], axis=1)
    sel = [np.flatnonzero(flags & f) for f in (F_EYE, F_BROW, F_MOUTH)]
    ptr = np.cumsum([0] + [len(x) for x in sel]).astype(np.int64)
    idx = np.concatenate(sel).astype(np.int64)
    return ptr, idx, np.ascontiguousarray(box[idx])


@njit(cache=True, fastmath=True)
def feature_reach(P, aa, ptr, tris, box, dflags):
    """Update ``dflags`` (the triangles' feature flags for this render) from P, the identity's and
    expression's parameters, and ``aa``, the pixel footprint (see ``paint``)."""
    # Eyes: the lower lid reaches at most (0.36 + 0.06 op) * 1.12 below its 0.04, the lashes 0.06 + aa
    # and the crease 0.07 below the lid line (which is at least 0.04); the lid line, lashes and crease
    # at most 0.04 + 0.52 * 1.22 op, + 0.12 + aa, + 0.38 op + 0.17 above the eye line (op: the
    # wider-open eye's aperture).
    op = max(P[45], P[46])
    bot = min(min(0.04 - (0.36 + 0.06 * op) * 1.12 * min(op * 2.0, 1.0), -0.02) - aa, -0.03)
    top = 0.04 + 0.52 * 1.22 * op + max(0.12 + aa, 0.38 * op + 0.17)
    lo, hi = EYE_Y + bot - FEATURE_SLACK, EYE_Y + top + FEATURE_SLACK
    for j in range(ptr[0], ptr[1]):
        t = tris[j]
        dflags[t] = (dflags[t] & ~F_EYE) | (F_EYE if box[j, 3] > lo and box[j, 2] < hi else 0)
    # Brows: the centre line is base + arch * sine (ranges per triangle), the band reaches the
    # half-width plus 0.25 either side of it.
    k = 1.0 + 0.35 * P[30]
    arch = 0.45 * (1.0 + 0.4 * P[44])
    for j in range(ptr[1], ptr[2]):
        half = max((0.28 - 0.18 * box[j, 4]) * k, (0.28 - 0.18 * box[j, 5]) * k, 0.04) + 0.25
        a0, a1 = arch * box[j, 6], arch * box[j, 7]
        lo = 1.5 - 0.25 * box[j, 5] + min(a0, a1) - half
        hi = 1.5 - 0.25 * box[j, 4] + max(a0, a1) + half
        lo, hi = lo - FEATURE_SLACK, hi + FEATURE_SLACK
        t = tris[j]
        dflags[t] = (dflags[t] & ~F_BROW) | (F_BROW if box[j, 3] > lo and box[j, 2] < hi else 0)
    # Mouth: the lips from -(0.95 + 0.1 P54) r^1.5 - aa to |0.72 + 0.12 P54| r + 0.1 r^2 + aa about
    # the lip line (r: the triangle's largest sqrt(1 - tt^2)), and the seam's gap.
    lower = max(0.95 + 0.1 * P[54], 0.0)
    upper = abs(0.72 + 0.12 * P[54])
    for j in range(ptr[2], ptr[3]):
        r = box[j, 8]
        lo = min(-lower * box[j, 9], -MOUTH_GAP) - aa
        hi = max(upper * r + 0.1 * r * r, MOUTH_GAP) + aa
        lo, hi = MOUTH_Y + lo - FEATURE_SLACK, MOUTH_Y + hi + FEATURE_SLACK
        t = tris[j]
        dflags[t] = (dflags[t] & ~F_MOUTH) | (F_MOUTH if box[j, 3] > lo and box[j, 2] < hi else 0)


def hair_weights(u, front):
    """Static per-vertex terms of ``hair_level``: [front blend, back blend, (|u|/4)^2, temple ramp, cap,
    sin(0.55 u), cos(0.55 u)] (the last two turn the hairline wave's sine into two products)."""
    import numpy as np

    au = np.abs(u)

    def ss(e0, e1, x):
        t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t)

    return np.stack(
        [
            np.where(front > 0.0, ss(0.25, 0.8, front), 0.0),
            np.where(front > 0.0, 0.0, ss(0.0, -0.6, front)),
            (au / 4.0) ** 2,
            ss(4.5, 0.0, au),
            ((front > 0.6) & (au < 5.0)).astype(np.float64),
            np.sin(0.55 * u),
            np.cos(0.55 * u),
        ],
        axis=1,
    )


@njit(cache=True, fastmath=True, inline="always")
def hair_level(v, hw0, hw1, hw2, hw3, hw4, hw5, hw6, P):
    """Height (cm) of a surface point above the hairline, which runs across the forehead, down in
    front of the ears to a length-dependent level at the sides, and round the back to the nape.
    ``hw0..hw6`` are the point's static terms (``hair_weights``); P the identity's parameters (a tuple)."""
    # A side parting / irregular hairline: a slow wave along the forehead, per identity.
    # P[56] sin(0.55 u + P[55]), expanded: P[58] = P[56] cos P[55], P[59] = P[56] sin P[55].
    hfront = P[35] - 0.6 * hw2 - P[37] * hw3 + P[58] * hw5 + P[59] * hw6
    hside = 1.8 - 9.0 * P[36]
    hback = -6.5 - 6.0 * P[36]
    line = hside + (hfront - hside) * hw0 + (hback - hside) * hw1
    if hw4 > 0.5 and hfront > line:
        line = hfront
    return v - line
