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
F_EYE, F_BROW, F_MOUTH, F_NOSTRIL, F_GLASSES, F_WRINKLE = 1, 2, 4, 8, 16, 32

# Slots of the per-render parameters P (``render.N_PARAMS``) used by the version-7 details; the
# older ones are numbered where ``render.appearance`` sets them.
P_SEX, P_AGE = 60, 61  # sex (-1 female .. +1 male), age (0 = 18 .. 1 = 80 years)
P_GLASSES = 64  # glasses in this image: 0 none .. 1 (wearers take them off in some images)
P_LENS_A, P_LENS_B, P_LENS_SQ, P_FRAME_T = 65, 66, 67, 68  # lens half-width, half-height, squareness, frame half-width (cm)
P_FRAME_RGB = 69  # 69-71
P_TINT = 72  # lens tint strength, colour 73-75
P_LENS_U, P_LENS_V, P_BRIDGE_V = 76, 77, 78
P_MOUSTACHE, P_GOATEE, P_FULL_BEARD, P_BEARD_DENSITY = 79, 80, 81, 82  # stubble is P[31]
P_HAT, P_HAT_FRONT, P_HAT_BACK, P_HAT_RGB, P_HAT_CAP = 83, 84, 85, 86, 89  # colour 86-88
P_FRECKLES, P_MOLE_U, P_MOLE_V, P_MOLE, P_MOLE2_U, P_MOLE2_V = 90, 91, 92, 93, 94, 95
P_WRINKLE_FOREHEAD, P_WRINKLE_EYES, P_WRINKLE_NASOLABIAL = 96, 97, 98
P_CURL, P_PARTING_U, P_PARTING, P_RECESSION, P_BROW_END, P_BLEMISH = 99, 100, 101, 102, 103, 104
P_LONG_HAIR = 105
P_LID, P_ALMOND, P_CREASE_H, P_CREASE = 106, 107, 108, 109  # upper lid height and shape, lid crease
P_LINER = 111  # eyeliner
P_BROW_Y, P_BROW_SLOPE, P_MARKS = 117, 118, 119  # the brow's height over the eye and its fall towards the tail
P_BEARD_LINE, P_BEARD_RGB, P_HAIR_COVER = 112, 113, 116  # beard's cheek line offset (cm) and colour (113-115); hair opacity


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
    # Where the hair covers the skin completely (its ragged edge reaches at most 0.3 below
    # ``level``; a close crop lets skin show), nothing under it is painted.
    if level < 0.45 or P[P_HAIR_COVER] < 1.0:
        c, spec, shin, occl = _skin_details(c, u, v, au, front, flags, beard_w, P, aa, spec, shin, occl)
    # Hair: above the hairline (``level`` > 0, interpolated from the vertices), with a ragged edge;
    # straight (strands along v) or curly (an isotropic map), and a parting.
    if level > -0.45:
        hs = HAIR_STEP * DETAIL[1, (int(v * 9.0) & 255), (int(u * 45.0 + front * 31.0) & 255)]
        if P[P_CURL] > 0.0:
            hc = HAIR_STEP * DETAIL[2, (int(v * 16.0 + front * 23.0) & 255), (int(u * 16.0) & 255)]
            hs = hs + (hc - hs) * P[P_CURL]
        lv = level + (0.25 + 0.35 * P[P_CURL]) * (hs - 0.5)
        if lv > -0.3:
            a = smoothstep(-0.25, 0.15, lv) * (P[P_HAIR_COVER] + (1.0 - P[P_HAIR_COVER]) * hs * hs)
            if P[P_PARTING] > 0.0 and front > 0.2:
                a = a * (1.0 - 0.6 * P[P_PARTING] * smoothstep(0.05 + aa, 0.0, abs(u - P[P_PARTING_U])) * smoothstep(0.6, 1.2, lv))
            g = 0.78 + 0.4 * hs
            c = _mix(c, vec3(P[17] * g, P[18] * g, P[19] * g), a)
            spec = spec * (1.0 - a) + 0.22 * a * hs
            shin = shin * (1.0 - a)
    # A hat or cap over the head (this image only), then glasses.
    if P[P_HAT] > 0.0:
        c, spec, shin, occl = _hat(c, spec, shin, occl, u, v, front, P, aa)
    if flags & F_GLASSES and P[P_GLASSES] > 0.0 and front > -0.1:
        c, spec, shin = _glasses(c, spec, shin, u, v, au, front, P, aa)
    return c, spec, shin, occl


@njit(cache=True, fastmath=True, inline="always")
def _skin_details(c, u, v, au, front, flags, beard_w, P, aa, spec, shin, occl):
    """Skin texture and marks, facial hair, lips and mouth, nostrils, brows, eyes and wrinkles."""
    # Fine skin texture: pores and blotches from a tiling noise map, offset per identity.
    ti = int(u * 16.0 + P[39]) & 255
    tj = int(v * 16.0 + P[40]) & 255
    t = SKIN_STEP * (np.int32(DETAIL[0, tj, ti]) - 128)
    c = c * (1.0 + P[34] * t)
    if P[P_MARKS] > 0.0 and front > 0.3:
        c = _skin_marks(c, t, u, v, au, P, aa)
    # Facial hair: stubble over the whole beard area (a shadow more than a colour), then moustache,
    # goatee and full beard in the hair colour.
    if beard_w > 0.01 and P[31] > 0.0:
        hs = HAIR_STEP * DETAIL[1, (int(v * 40.0) & 255), (int(u * 40.0) & 255)]
        a = beard_w * P[31] * 0.4 * (0.4 + 0.6 * hs)
        c = _mix(c, c * vec3(0.55, 0.55, 0.6) + vec3(P[17], P[18], P[19]) * 0.25, a)
        dvm = v - MOUTH_Y
        ragged = 0.25 * (hs - 0.5)
        cover = 0.0
        if P[P_FULL_BEARD] > 0.0:
            line = max(-4.45 - 1.0 * smoothstep(2.2, 3.0, au), -6.0 + 1.6 * (au - 2.8) + P[P_BEARD_LINE])  # the cheek line
            cover = P[P_FULL_BEARD] * smoothstep(0.3, -0.3, v - line + ragged) * smoothstep(0.01, 0.25, beard_w)
        # The moustache and goatee lie inside a full beard: needed only where it does not cover.
        if P[P_MOUSTACHE] > 0.0 and au < 3.3 and cover < 1.0:
            # From just above the upper lip's edge up to the nose, tapering to the mouth corners.
            tt = au / 2.9
            low = 0.62 * math.sqrt(max(1.0 - tt * tt, 0.0)) + 0.12
            top = 2.3 - 1.5 * tt * tt
            cover = max(cover, P[P_MOUSTACHE] * smoothstep(low - 0.12, low + 0.12, dvm + ragged) * smoothstep(top + 0.15, top - 0.15, dvm + ragged))
        if P[P_GOATEE] > 0.0 and dvm < -0.6 and cover < 1.0:
            # The chin below the lower lip, rounded, and down under it.
            x, y = au / 2.0, (dvm + 2.9) / 2.3
            g = P[P_GOATEE] * smoothstep(1.1, 0.85, math.sqrt(x * x + y * y) + ragged) * smoothstep(-0.75, -1.05, dvm)
            cover = max(cover, g)
        if cover > 0.0:
            a = min(cover * P[P_BEARD_DENSITY] * (0.7 + 0.3 * hs), 1.0)
            k = 0.6 + 0.5 * hs
            c = _mix(c, vec3(P[P_BEARD_RGB] * k, P[P_BEARD_RGB + 1] * k, P[P_BEARD_RGB + 2] * k), a)
            spec = spec * (1.0 - 0.8 * a)
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
            base = 1.5 + P[P_BROW_Y] - P[P_BROW_SLOPE] * xn
            gap = max(v - base - max(arch, 0.0), base + min(arch, 0.0) - v, 0.0)
            if gap - half < 0.25 + 1e-6:
                xc = min(max(xn, 0.0), 1.0)
                centre = base + arch * math.sin(math.pi * math.sqrt(xc * math.sqrt(xc)))
                d = abs(v - centre) - half
                if d < 0.25:
                    hs = HAIR_STEP * DETAIL[1, (int(v * 45.0 + 17.0) & 255), (int(u * 12.0) & 255)]
                    m = smoothstep(aa + 0.05, -aa, d) * smoothstep(-0.3, 0.15, x) * smoothstep(P[P_BROW_END], P[P_BROW_END] - 0.7, x)
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
            top = op * P[P_LID] * r2 * r4 * (1.0 - P[P_ALMOND] * tt) + 0.04
            bot = -(0.36 + 0.06 * op) * w2 / math.sqrt(r4 + 1e-12) * (1.0 + 0.1 * tt) * min(op * 2.0, 1.0) + 0.04
            if top < bot:
                top = bot
            ins = smoothstep(-aa, aa, top - dv) * smoothstep(-aa, aa, dv - bot)
            # Lid shadow above and lashes on the upper lid line.
            # Eyeliner (P_LINER) thickens the line and draws it out past the outer corner (tt > 0).
            lash = smoothstep(0.09 + 0.06 * P[P_LINER] + aa, 0.0, abs(dv - top - 0.03)) * smoothstep(1.0 + 0.12 * P[P_LINER], 0.6, abs(tt))
            crease = smoothstep(0.12, 0.0, abs(dv - top - P[P_CREASE_H] * op - 0.05)) * w2
            c = c * (1.0 - P[P_CREASE] * crease)
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
    if flags & F_WRINKLE and P[P_WRINKLE_NASOLABIAL] > 0.0:
        c = c * (1.0 - _wrinkles(u, v, au, P, aa))
    return c, spec, shin, occl


@njit(cache=True, fastmath=True, inline="always")
def _skin_marks(c, t, u, v, au, P, aa):
    """Freckles over the nose and cheeks and red blemishes where the skin texture ``t`` peaks, up
    to two moles (on the face's front; P_MARKS > 0 when any of them is there)."""
    # Branches on the region only: ``t`` is noise, and a branch on it would be mispredicted often.
    if P[P_FRECKLES] > 0.0:
        du, dv = (au - 1.8) * 0.33, (v + 2.3) * 0.45
        region = 1.0 - du * du - dv * dv
        if region > 0.0:
            sp = min(max((t - 0.4) * 3.3, 0.0), 1.0) * min(region * 3.0, 1.0) * P[P_FRECKLES]
            c = c * (1.0 - vec3(0.25, 0.4, 0.52) * sp)
    if P[P_BLEMISH] > 0.0 and v < 3.0:
        sp = min(max((-0.75 - t) * 4.0, 0.0), 1.0) * P[P_BLEMISH]
        c = c * (1.0 - vec3(0.05, 0.3, 0.32) * sp)
    if P[P_MOLE] > 0.0:
        r = 0.16 + aa * 0.5
        du, dv = u - P[P_MOLE_U], v - P[P_MOLE_V]
        if abs(du) < r and abs(dv) < r:
            c = _mix(c, c * vec3(0.42, 0.33, 0.28), P[P_MOLE] * smoothstep(r, 0.1 - aa * 0.5, math.sqrt(du * du + dv * dv)))
        du, dv = u - P[P_MOLE2_U], v - P[P_MOLE2_V]
        if P[P_MOLE] > 0.8 and abs(du) < r and abs(dv) < r:
            c = _mix(c, c * vec3(0.42, 0.33, 0.28), P[P_MOLE] * smoothstep(r, 0.1 - aa * 0.5, math.sqrt(du * du + dv * dv)))
    return c


@njit(cache=True, fastmath=True, inline="always")
def _wrinkles(u, v, au, P, aa):
    """Darkening (0 .. ~0.3) of forehead lines, crow's feet and the nasolabial folds (in the
    F_WRINKLE triangles; see ``model._tri_flags`` for the regions)."""
    dark = 0.0
    if 1.9 < v < 5.2 and au < 4.7:  # lines across the forehead, bowed and wavy, fading at the ends
        w = 0.2 * u + 0.3 * P[P_WRINKLE_EYES]
        w = abs(w - math.floor(w) - 0.5)  # triangle waves (cheaper than sines)
        x = (v - 2.3 - 0.05 * u * u - 0.5 * w) * 1.9
        if 0.0 < x < 4.2:
            fx = math.floor(x)
            d = abs(x - fx - 0.5) / 1.9
            k = 0.14 * u + 0.37 * fx
            k = 0.5 + 2.0 * abs(k - math.floor(k) - 0.5)  # each line fades in and out
            dark = 0.12 * k * P[P_WRINKLE_FOREHEAD] * smoothstep(0.09 + 0.5 * aa, 0.0, d) * smoothstep(4.7, 3.2, au)
    du = au - (EYE_X + 1.35)
    if 0.0 < du < 1.45 and abs(v) < 1.1:  # crow's feet, fanning out from the outer corners
        x = v / (du + 0.3) * 2.8
        d = abs(x - math.floor(x) - 0.5) * (du + 0.3) / 2.8
        dark = 0.2 * P[P_WRINKLE_EYES] * smoothstep(0.045 + 0.5 * aa, 0.0, d) * smoothstep(1.45, 0.5, du) * smoothstep(0.0, 0.15, du)
    if -8.3 < v < -3.8:  # nasolabial folds, curving from beside the nose wings past the mouth corners
        t = (-3.9 - v) / 3.8
        d = au - (2.0 + 0.9 * t + 0.45 * t * t)
        # A soft groove: darkest on its line, fading more slowly on the cheek's side (d > 0).
        d = -d * 1.6 if d < 0.0 else d
        dark = max(dark, 0.2 * P[P_WRINKLE_NASOLABIAL] * smoothstep(0.3 + 0.5 * aa, 0.0, d)
                   * smoothstep(0.05, 0.3, t) * smoothstep(1.15, 0.8, t))
    return dark


@njit(cache=True, fastmath=True, inline="always")
def _hat(c, spec, shin, occl, u, v, front, P, aa):
    """A knitted beanie or a cap (crown, a brim band and its shadow on the forehead) above a line
    that runs from P_HAT_FRONT over the forehead to P_HAT_BACK at the back."""
    fb = smoothstep(-0.3, 0.7, front)
    d = v - (P[P_HAT_BACK] + (P[P_HAT_FRONT] - P[P_HAT_BACK]) * fb)
    if d > -1.8:
        col = vec3(P[P_HAT_RGB], P[P_HAT_RGB + 1], P[P_HAT_RGB + 2])
        if P[P_HAT_CAP] > 0.5:
            # The brim's shadow on the face below it, the brim's darker edge, then the crown.
            occl = occl * (1.0 - 0.4 * smoothstep(-1.8, 0.0, d) * fb)
            col = col * (1.0 - 0.25 * smoothstep(0.9, 0.6, d) * fb)
        else:
            x = u * 3.2 + front * 7.0  # ribs
            rib = abs(x - math.floor(x) - 0.5) * 2.0
            fold = smoothstep(1.2, 1.0, d) * smoothstep(0.7, 0.9, d)  # the turned-up band's edge
            col = col * (0.8 + 0.25 * rib - 0.25 * fold)
        a = smoothstep(-aa, aa, d)
        c = _mix(c, col, a)
        spec = spec * (1.0 - a) + 0.04 * a
        shin = shin * (1.0 - a)
    return c, spec, shin, occl


@njit(cache=True, fastmath=True, inline="always")
def _glasses(c, spec, shin, u, v, au, front, P, aa):
    """Spectacles painted on the face plane: two lenses (ellipses to rounded rectangles) with a
    frame, a bridge over the nose and the arms back to the ears; lenses are lightly tinted."""
    # A partial P_GLASSES (between a wearer and a non-wearer in a mixup) thins the frame first.
    A, B, T = P[P_LENS_A], P[P_LENS_B], P[P_FRAME_T] * (0.3 + 0.7 * P[P_GLASSES])
    du = au - P[P_LENS_U]
    dv = v - P[P_LENS_V]
    reach = T + aa
    if dv > B + reach or dv < -B - reach:
        return c, spec, shin  # above or below the lenses, their frame, the bridge and the arms
    x, y = du / A, dv / B
    x2, y2 = x * x, y * y
    q = x2 + y2
    frame = 0.0
    m = 1.0 - reach / min(A, B)
    if q < m * m and -A + 0.3 < du < A - 0.2:
        # Well inside a lens (no frame, bridge or arm within reach): the tint alone. The
        # superellipse's radius r lies between sqrt(q) and q's fourth-power mean, both below m.
        lens = P[P_GLASSES]
        c = _mix(c, vec3(P[P_TINT + 1], P[P_TINT + 2], P[P_TINT + 3]), P[P_TINT] * lens)
        spec = spec + 0.25 * lens
        shin = shin + (1.5 - shin) * lens
        return c, spec, shin
    if du > A + reach:  # beside the lens: only the arm, back to the ear
        if front > -0.1:
            arm = abs(v - P[P_LENS_V] - 0.5 * B + 0.05 * (du - A))
            frame = smoothstep(0.8 * T + aa, 0.8 * T - aa, arm) * smoothstep(-0.1, 0.05, front)
    else:
        r1 = math.sqrt(q)
        r = r1 + (math.sqrt(math.sqrt(x2 * x2 + y2 * y2)) - r1) * P[P_LENS_SQ]
        d = abs(r - 1.0) * (B if y2 > x2 else A)
        frame = smoothstep(T + aa, T - aa, d)
        inner = P[P_LENS_U] - A
        if au < inner + 0.3:  # the bridge
            frame = max(frame, smoothstep(0.7 * T + aa, 0.7 * T - aa, abs(v - P[P_BRIDGE_V] + 0.12 * au)))
        elif du > A - 0.2 and front > -0.1:  # the arms
            arm = abs(v - P[P_LENS_V] - 0.5 * B + 0.05 * (du - A))
            frame = max(frame, smoothstep(0.8 * T + aa, 0.8 * T - aa, arm) * smoothstep(-0.1, 0.05, front))
        if r < 1.0:
            lens = smoothstep(1.0, 1.0 - aa / B, r) * P[P_GLASSES]
            c = _mix(c, vec3(P[P_TINT + 1], P[P_TINT + 2], P[P_TINT + 3]), P[P_TINT] * lens)
            spec = spec + 0.25 * lens
            shin = shin + (1.5 - shin) * lens
    frame = frame * smoothstep(0.0, 0.25, P[P_GLASSES])
    if frame > 0.0:
        c = _mix(c, vec3(P[P_FRAME_RGB], P[P_FRAME_RGB + 1], P[P_FRAME_RGB + 2]), frame)
        spec = spec * (1.0 - frame) + 0.35 * frame
        shin = shin * (1.0 - frame) + frame
    return c, spec, shin


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
    # (+ eyeliner) and the crease 0.07 below the lid line (which is at least 0.04); the lid line, lashes and crease
    # at most 0.04 + P_LID * 1.22 op, + 0.12 + aa, + P_CREASE_H op + 0.17 above the eye line (op: the
    # wider-open eye's aperture).
    op = max(P[45], P[46])
    liner = 0.06 * P[P_LINER]  # eyeliner widens the lash line by this much either side
    bot = min(min(0.04 - (0.36 + 0.06 * op) * 1.12 * min(op * 2.0, 1.0), -0.02 - liner) - aa, -0.03)
    top = 0.04 + P[P_LID] * 1.22 * op + max(0.12 + liner + aa, P[P_CREASE_H] * op + 0.17)
    lo, hi = EYE_Y + bot - FEATURE_SLACK, EYE_Y + top + FEATURE_SLACK
    for j in range(ptr[0], ptr[1]):
        t = tris[j]
        dflags[t] = (dflags[t] & ~F_EYE) | (F_EYE if box[j, 3] > lo and box[j, 2] < hi else 0)
    # Brows: the centre line is base (1.5 + P_BROW_Y - P_BROW_SLOPE xn) + arch * sine (ranges per
    # triangle), the band reaches the
    # half-width plus 0.25 either side of it.
    k = 1.0 + 0.35 * P[30]
    arch = 0.45 * (1.0 + 0.4 * P[44])
    for j in range(ptr[1], ptr[2]):
        half = max((0.28 - 0.18 * box[j, 4]) * k, (0.28 - 0.18 * box[j, 5]) * k, 0.04) + 0.25
        a0, a1 = arch * box[j, 6], arch * box[j, 7]
        s0, s1 = P[P_BROW_SLOPE] * box[j, 4], P[P_BROW_SLOPE] * box[j, 5]
        lo = 1.5 + P[P_BROW_Y] - max(s0, s1) + min(a0, a1) - half
        hi = 1.5 + P[P_BROW_Y] - min(s0, s1) + max(a0, a1) + half
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
    sin(0.55 u), cos(0.55 u), long-hair blend] (sin and cos turn the hairline wave's sine into two
    products; long hair covers the sides behind the cheeks, where basis S_LONG_HAIR moves it out)."""
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
            ss(0.2, 0.42, front),
        ],
        axis=1,
    )


@njit(cache=True, fastmath=True, inline="always")
def hair_level(v, hw0, hw1, hw2, hw3, hw4, hw5, hw6, hw7, P):
    """Height (cm) of a surface point above the hairline, which runs across the forehead, down in
    front of the ears to a length-dependent level at the sides, and round the back to the nape.
    ``hw0..hw6`` are the point's static terms (``hair_weights``); P the identity's parameters (a tuple)."""
    # A side parting / irregular hairline: a slow wave along the forehead, per identity.
    # P[56] sin(0.55 u + P[55]), expanded: P[58] = P[56] cos P[55], P[59] = P[56] sin P[55].
    # Receding (P_RECESSION): the hairline climbs at the temples first.
    hfront = P[35] - (0.6 - P[P_RECESSION]) * hw2 - P[37] * hw3 + P[58] * hw5 + P[59] * hw6
    hside = 1.8 - 9.0 * P[36] * (1.0 - P[P_LONG_HAIR])
    hback = -6.5 - 6.0 * P[36]
    line = hside + (hfront - hside) * hw0 + (hback - hside) * hw1
    if hw4 > 0.5 and hfront > line:
        line = hfront
    # Long hair (P_LONG_HAIR) falls past the ears to the shoulders, behind the cheeks.
    long_line = -24.0 + (hfront + 24.0) * hw7
    if long_line < line:
        line = line + (long_line - line) * P[P_LONG_HAIR]
    return v - line
