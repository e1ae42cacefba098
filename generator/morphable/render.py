"""The per-sample render: pose, camera, alignment, rasterisation, deferred shading, edge AA.

Everything after the component blend runs here, one sample at a time, with scratch buffers reused
across the batch. The similarity transform that maps the projected 3D landmarks onto the ArcFace
template is folded into the viewport before rasterising, so the image is rendered directly in the
aligned frame (no resampling blur, exact landmark placement).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.np.unsafe.ndarray import to_fixed_tuple

from .. import layout
from .background import (
    BG_PARAMS, N_DISTANCE, N_GAZE_U, N_GAZE_V, N_SEED, background_grid, background_params, hash_uniform, phi,
)
from .basis import (
    BLINK, BROW_RAISE, EYE_CLOSE_L, EYE_CLOSE_R, JAW_OPEN, LOWER_LIP_DOWN, N_APPEARANCE, N_EXPR, N_SHAPE, S_AGE,
    S_BEARD, S_HAIR_VOLUME, S_LIPS, S_LONG_HAIR, S_MIDFACE, S_SEX, S_WEIGHT, SQUINT, UPPER_LIP_UP,
)
from .raster import rasterise, vertex_normals
from .shading import (
    P_AGE, P_BEARD_DENSITY, P_BLEMISH, P_BRIDGE_V, P_BROW_END, P_CURL, P_FRAME_RGB, P_FRAME_T, P_FRECKLES,
    P_FULL_BEARD, P_GLASSES, P_GOATEE, P_HAT, P_HAT_BACK, P_HAT_CAP, P_HAT_FRONT, P_HAT_RGB, P_LENS_A, P_LENS_B,
    P_LENS_SQ, P_LENS_U, P_LENS_V, P_LID, P_LINER, P_BEARD_LINE, P_BEARD_RGB, P_HAIR_COVER, P_BROW_Y, P_BROW_SLOPE, P_MARKS, P_ALMOND, P_CREASE, P_CREASE_H, P_LONG_HAIR, P_MOLE, P_MOLE2_U, P_MOLE2_V, P_MOLE_U, P_MOLE_V, P_MOUSTACHE,
    P_PARTING, P_PARTING_U, P_RECESSION, P_SEX, P_TINT, P_WRINKLE_EYES, P_WRINKLE_FOREHEAD, P_WRINKLE_NASOLABIAL,
    feature_reach, hair_level, paint, sh_irradiance, sh_rgb, smoothstep,
)
from .mesh import EYE_X
from .simd import N_INTERP, interp_rows, lane, load4, store_rgb8, vec3

N_PARAMS = 120
N_ATTR = N_INTERP
# Where each field starts in the coefficient record (``layout``), as module-level ints: numba compiles
# them into the kernels as constants.
SHAPE0, ALB0, EXPR0, POSE0, LIGHT0, NOISE0 = (
    layout.SLICES[name].start for name in ("shape", "albedo", "expression", "pose", "lighting", "noise")
)
SH_CHANNELS, SH_BANDS, SH_DC_OFFSET = layout.SH_CHANNELS, layout.SH_BANDS, layout.SH_DC_OFFSET
# The blend weights are the shape components then the expression components, one per record value.
assert (N_SHAPE, N_EXPR) == (layout.SIZES["shape"], layout.SIZES["expression"])

_SKIN = np.array(  # albedo from very light to very dark skin (display values, before shading)
    [
        [0.93, 0.74, 0.66],
        [0.88, 0.65, 0.55],
        [0.79, 0.55, 0.44],
        [0.63, 0.42, 0.31],
        [0.43, 0.28, 0.20],
        [0.26, 0.17, 0.13],
    ]
)
_HAIR = np.array([[0.72, 0.58, 0.38], [0.45, 0.31, 0.18], [0.19, 0.12, 0.075], [0.055, 0.045, 0.04]])


@njit(cache=True, fastmath=True, inline="always")
def _palette(pal, t, o, out):
    n = pal.shape[0] - 1
    x = min(max(t, 0.0), 1.0) * n
    i = min(int(x), n - 1)
    f = x - i
    for c in range(3):
        out[o + c] = pal[i, c] + (pal[i + 1, c] - pal[i, c]) * f


@njit(cache=True, fastmath=True, inline="always")
def traits(rec):
    """The identity's latent traits that shape and appearance share, from its record: sex (-1 female
    .. +1 male, nearly two-valued), age (0 = 18 .. 1 = 80 years, median ~40), hair length (0 cropped
    .. 1 long), curliness, baldness (0 .. 1) and facial hair (stubble, moustache, goatee, full beard,
    each 0 .. 1) and the beard's length.

    Each is a monotonic function of one linear combination of record values, so along an identity
    morph (a straight line between two records) it grows or shrinks steadily, and never shows up
    half-way in a face that has it at neither end (as a product such as "male x beardy" would).
    """
    a = rec[ALB0 : ALB0 + N_APPEARANCE]
    zs, za = rec[SHAPE0 + S_SEX], rec[SHAPE0 + S_AGE]
    sex = 2.0 * phi(2.5 * zs) - 1.0
    age = phi(za) ** 1.4
    hair_len = phi(1.2 * rec[SHAPE0 + S_LONG_HAIR] - 1.2 * zs + 0.25 * a[17])
    curl = smoothstep(1.2, 2.4, a[34] + 1.2 * a[0] - 0.6 * rec[SHAPE0 + S_MIDFACE])
    bald = smoothstep(2.8, 4.6, a[36] + 3.0 * zs + 1.3 * za - 1.3 * rec[SHAPE0 + S_LONG_HAIR])
    # Facial hair: about 7 in 10 men show some (stubble at least), so ~35% of identities; the
    # styles nest (a full beard includes the goatee and moustache).
    b = a[12] + 3.0 * zs
    stubble = smoothstep(0.8, 2.0, b)
    b2 = a[12] + 4.5 * zs + 1.5 * a[28]
    moustache = smoothstep(3.0, 4.2, b2)
    goatee = smoothstep(3.5, 4.7, b2)
    full = smoothstep(4.2, 5.4, b2)
    length = phi(rec[SHAPE0 + S_BEARD])
    return sex, age, hair_len, curl, bald, stubble, moustache, goatee, full, length


@njit(cache=True, fastmath=True)
def appearance(rec, P):
    """Named appearance coefficients -> colours and detail parameters (P[14:45], P[54:57], P[60:106]).

    Correlations follow populations: darker skin goes with darker hair and irises on average, but
    each has its own coefficient so every combination occurs; men have facial hair and short hair
    more often, women long hair and make-up; older people grey, wrinkle and wear glasses more.
    """
    a = rec[ALB0 : ALB0 + N_APPEARANCE]
    sex, age, hair_len, curl, bald, stubble, moustache, goatee, full, length = traits(rec)
    male, female = 0.5 + 0.5 * sex, 0.5 - 0.5 * sex
    P[P_SEX], P[P_AGE] = sex, age
    m = phi(0.95 * a[0])
    _palette(_SKIN, m, 14, P)
    hb, ol = 0.05 * a[1] + 0.02 * sex, 0.035 * a[2]
    P[14] *= 1.0 + hb
    P[15] *= 1.0 - 0.6 * hb + ol
    P[16] *= 1.0 - 0.6 * hb - 1.5 * ol
    hd = phi(0.9 * a[3] + 3.0 * (m - 0.3) + 0.8 * rec[SHAPE0 + S_MIDFACE])
    _palette(_HAIR, hd, 17, P)
    red = max(phi(a[4]) - 0.75, 0.0) * 4.0 * (1.0 - hd)
    P[17] *= 1.0 + 0.5 * red
    P[18] *= 1.0 - 0.1 * red
    P[19] *= 1.0 - 0.35 * red
    grey = phi(a[5] - 1.7 + 1.6 * (rec[SHAPE0 + S_AGE] - 0.1))  # greying with age
    for c in range(3):
        P[17 + c] += (0.62 - P[17 + c]) * grey
    idk = phi(0.8 * a[6] + 2.8 * (m - 0.2))
    hue = phi(a[7])
    light_r, light_g, light_b = 0.30 + 0.10 * hue, 0.42 - 0.02 * hue, 0.55 - 0.33 * hue
    brown = smoothstep(0.15, 0.55, idk)
    dark = smoothstep(0.6, 1.0, idk)
    P[20] = light_r + (0.24 - light_r) * brown + (0.09 - 0.24) * dark
    P[21] = light_g + (0.13 - light_g) * brown + (0.05 - 0.13) * dark
    P[22] = light_b + (0.065 - light_b) * brown + (0.03 - 0.065) * dark
    # Make-up, worn by about half the women: lipstick, eyeliner and mascara, shadow, blush.
    mk = smoothstep(1.6, 2.4, a[42] - 2.5 * rec[SHAPE0 + S_SEX])
    lr, ld = 0.04 * a[8] + 0.10 * mk, phi(a[9])
    lipdark = 1.0 - 0.12 * ld - 0.18 * m + 0.05 * a[27] - 0.12 * mk * (phi(a[42] + a[8]) - 0.3)
    P[23] = P[14] * (0.92 + lr) * lipdark
    P[24] = P[15] * (0.68 - 0.6 * lr - 0.12 * mk) * lipdark
    P[25] = P[16] * (0.74 - 0.3 * lr - 0.05 * mk) * lipdark
    # Brows: hair colour, but always darker than the skin around them (fair brows on dark skin
    # are rare, and without the contrast the face loses its most robust feature). Men's are
    # thicker, lower and straighter; women's thinner and arched.
    bc = 0.75 + 0.1 * a[20]
    for c in range(3):
        P[26 + c] = min(P[17 + c] * bc * (1.0 - 0.25 * grey), 0.5 * P[14 + c])
    P[29] = min(max(0.72 + 0.15 * a[10] + 0.08 * sex, 0.35), 0.97)  # brow density
    P[30] = 1.2 * a[11] + 0.6 * sex  # brow thickness
    P[31] = stubble * (0.35 + 0.65 * phi(a[12] - 0.5))
    P[32] = 0.10 * (1.0 + 0.5 * a[13]) + 0.08 * mk  # blush
    P[33] = 0.07 * (1.0 + 0.5 * a[14]) + 0.12 * mk  # eye-area shadow
    P[34] = min(max(0.06 * (1.0 + 0.35 * a[15]) + 0.03 * age, 0.015), 0.17)  # fine texture amplitude
    P[35] = 6.3 + 0.8 * a[16] + 2.0 * bald + 8.0 * bald * bald  # front hairline height above the eyes
    P[36] = hair_len ** 1.3  # hair length over the sides and back
    P[37] = min(max(a[18] - 0.4, 0.0) * 1.6, 1.5) * (1.0 - bald)  # fringe
    P[38] = min(max(1.0 + 0.4 * a[19] + 0.3 * mk, 0.3), 2.2)  # skin shine
    P[39] = 37.0 * a[21]
    P[40] = 37.0 * a[22]
    P[41] = min(max(0.8 + 0.15 * a[23] + 0.3 * mk - 0.1 * male, 0.3), 1.0)
    P[42] = a[24]
    P[43] = max(a[25], 0.0)
    P[44] = 1.4 * a[26] - 0.7 * sex
    P[54] = a[27] * 0.5
    P[55] = 1.7 * a[21] + 0.9 * a[16]  # hairline wave phase
    P[56] = 0.45 * abs(a[22])  # hairline wave depth (cm)
    P[58] = P[56] * math.cos(P[55])
    P[59] = P[56] * math.sin(P[55])
    # Facial hair (P[31] stubble): moustache, goatee, full beard, and how dense and dark.
    P[P_MOUSTACHE], P[P_GOATEE], P[P_FULL_BEARD] = moustache, goatee, full
    P[P_BEARD_DENSITY] = 0.55 + 0.45 * length
    P[P_BEARD_LINE] = 0.8 * math.tanh(a[47])  # the cheek line, low (-) to high (+)
    # Beards are often redder, lighter or greyer than the hair on the head.
    bt = 0.1 * a[48] + 0.25 * grey * phi(a[47] - 0.5)
    for c in range(3):
        P[P_BEARD_RGB + c] = P[17 + c] + (0.62 - P[17 + c]) * bt
    P[P_BEARD_RGB] *= 1.0 + 0.15 * max(a[4], 0.0)
    # Short hair is clipped close in some (a buzz cut: skin shows between the hairs).
    P[P_HAIR_COVER] = 1.0 - 0.55 * smoothstep(0.8, 1.6, a[48] + 1.2 * rec[SHAPE0 + S_SEX] - 1.5 * hair_len)
    # Hair: curls, a parting, a receding hairline, long hair over the shoulders.
    P[P_CURL] = curl
    P[P_PARTING_U] = 3.0 * math.tanh(2.0 * a[35])  # centre or side
    P[P_PARTING] = smoothstep(0.3, 0.6, phi(a[35] * 0.7 + a[16])) * (1.0 - curl) * (1.0 - bald)
    P[P_RECESSION] = 2.5 * bald + 1.2 * smoothstep(1.5, 3.5, 2.0 * rec[SHAPE0 + S_SEX] + rec[SHAPE0 + S_AGE])
    P[P_LONG_HAIR] = smoothstep(0.4, 0.95, hair_len)
    P[P_LINER] = mk
    # Brow tail: where the brow ends (|u| - 1, cm).
    P[P_BROW_END] = 4.6 - 0.5 * phi(a[43])
    # Brow height over the eye (men's lower) and its slope: tails that fall, or run level.
    P[P_BROW_Y] = 0.15 * math.tanh(a[49]) - 0.08 * sex
    P[P_BROW_SLOPE] = 0.25 + 0.18 * math.tanh(a[50])
    # Skin: freckles (mostly on light skin), moles, blemishes; wrinkles with age.
    P[P_FRECKLES] = smoothstep(1.2, 2.0, a[37] - 0.6 * a[0])
    P[P_MOLE] = smoothstep(0.2, 1.4, a[38])
    P[P_MOLE_U] = 1.5 + 3.5 * phi(a[39])
    P[P_MOLE_V] = -9.0 + 8.5 * phi(a[40])
    P[P_MOLE2_U] = -1.0 - 4.0 * phi(a[40] - a[39])
    P[P_MOLE2_V] = -8.5 + 9.0 * phi(a[39] + a[38])
    P[P_BLEMISH] = smoothstep(0.9, 1.7, a[44] - 0.5 * rec[SHAPE0 + S_AGE])
    P[P_MARKS] = P[P_FRECKLES] + P[P_MOLE] + P[P_BLEMISH]
    wr = rec[SHAPE0 + S_AGE] + 0.5 * a[41]
    # (Faint lines would not show: each starts where it becomes visible; the nasolabial folds
    # first, as ``paint`` looks for the others only where they are.)
    P[P_WRINKLE_FOREHEAD] = smoothstep(0.5, 2.2, wr)
    P[P_WRINKLE_EYES] = smoothstep(0.8, 2.4, wr)
    P[P_WRINKLE_NASOLABIAL] = smoothstep(0.3, 2.0, wr)
    # Eyes: a higher or lower upper lid, rounder or more almond-shaped, and the lid crease, from a
    # deep fold to none (the monolid, which goes with a flat midface, see basis S_MIDFACE).
    P[P_LID] = 0.49 + 0.04 * math.tanh(a[45])
    P[P_ALMOND] = 0.18 + 0.1 * math.tanh(0.8 * a[46] - 0.6 * a[45])
    P[P_CREASE_H] = 0.30 + 0.08 * math.tanh(a[46])
    P[P_CREASE] = 0.26 * smoothstep(2.2, 0.6, rec[SHAPE0 + S_MIDFACE] + 0.5 * a[46])
    # Glasses: about 3 in 10 identities (more of the old), in 80% of their photos (image_switches).
    gl = smoothstep(0.45, 0.85, a[29] + 0.4 * rec[SHAPE0 + S_AGE])
    sq = phi(a[30])
    P[P_GLASSES] = gl
    P[P_LENS_SQ] = sq
    size = phi(a[31])
    P[P_LENS_A] = 2.05 + 0.55 * size
    P[P_LENS_B] = (1.25 + 0.6 * size) * (1.0 - 0.25 * sq)
    P[P_LENS_U] = EYE_X + 0.12 + 0.15 * size
    P[P_LENS_V] = 0.1 + 0.15 * size
    P[P_BRIDGE_V] = P[P_LENS_V] + 0.45 * P[P_LENS_B]
    fr = phi(a[32])
    if fr < 0.3:  # thin metal: gold or silver
        P[P_FRAME_T] = 0.07
        gold = smoothstep(0.1, 0.2, fr)
        P[P_FRAME_RGB], P[P_FRAME_RGB + 1], P[P_FRAME_RGB + 2] = 0.55 + 0.1 * gold, 0.55, 0.55 - 0.25 * gold
    else:  # plastic, thin to thick: black, dark brown, tortoiseshell, navy, red
        P[P_FRAME_T] = 0.11 + 0.16 * phi(a[32] * 3.0 - a[31])
        k = phi(3.0 * a[32] + a[30])
        if k < 0.5:
            P[P_FRAME_RGB], P[P_FRAME_RGB + 1], P[P_FRAME_RGB + 2] = 0.04, 0.035, 0.035
        elif k < 0.75:
            P[P_FRAME_RGB], P[P_FRAME_RGB + 1], P[P_FRAME_RGB + 2] = 0.22, 0.12, 0.06
        elif k < 0.9:
            P[P_FRAME_RGB], P[P_FRAME_RGB + 1], P[P_FRAME_RGB + 2] = 0.06, 0.08, 0.18
        else:
            P[P_FRAME_RGB], P[P_FRAME_RGB + 1], P[P_FRAME_RGB + 2] = 0.35, 0.06, 0.06
    t = phi(a[33])
    P[P_TINT] = 0.06 + 0.25 * smoothstep(0.8, 0.9, t) + 0.25 * smoothstep(0.95, 0.98, t)
    P[P_TINT + 1], P[P_TINT + 2], P[P_TINT + 3] = 0.08 + 0.1 * t, 0.08 + 0.05 * t, 0.09
    return m


# Within-identity switches from the image's noise seed (counters of background.hash_uniform; 0
# and 1 place the sensor noise): glasses on or off, a hat or cap.
HASH_GLASSES_OFF, HASH_HAT, HASH_HAT_KIND, HASH_HAT_COLOUR, HASH_HAT_SHADE = 2, 3, 4, 5, 6
GLASSES_OFF = 0.2  # the share of a wearer's images without glasses
HAT = 0.08  # the share of images with a hat or cap


@njit(cache=True, fastmath=True)
def image_switches(seed, P):
    """Per-image accessories (P[64], P[83:90]): a pure function of the image's noise seed."""
    if hash_uniform(seed, HASH_GLASSES_OFF) < GLASSES_OFF:
        P[P_GLASSES] = 0.0
    P[P_HAT] = 0.0
    if hash_uniform(seed, HASH_HAT) < HAT:
        P[P_HAT] = 1.0
        kind = hash_uniform(seed, HASH_HAT_KIND)
        P[P_HAT_CAP] = 1.0 if kind < 0.55 else 0.0
        P[P_HAT_FRONT] = 5.2 + 1.2 * hash_uniform(seed, HASH_HAT_SHADE) if kind < 0.55 else 4.6 + 1.6 * kind
        P[P_HAT_BACK] = 1.5 if kind < 0.55 else -0.5
        col = hash_uniform(seed, HASH_HAT_COLOUR)
        shade = 0.04 + 0.5 * hash_uniform(seed, HASH_HAT_SHADE) ** 1.5
        o = P_HAT_RGB
        if col < 0.3:  # grey to black
            P[o], P[o + 1], P[o + 2] = shade, shade, shade
        elif col < 0.5:  # navy
            P[o], P[o + 1], P[o + 2] = 0.3 * shade, 0.35 * shade, 0.8 * shade + 0.05
        elif col < 0.65:  # red
            P[o], P[o + 1], P[o + 2] = 0.7 * shade + 0.1, 0.12 * shade, 0.12 * shade
        elif col < 0.8:  # beige / khaki
            P[o], P[o + 1], P[o + 2] = 0.35 + shade * 0.5, 0.3 + shade * 0.4, 0.2 + shade * 0.25
        elif col < 0.9:  # green
            P[o], P[o + 1], P[o + 2] = 0.2 * shade + 0.03, 0.45 * shade + 0.05, 0.25 * shade
        else:  # white
            P[o], P[o + 1], P[o + 2] = 0.75, 0.74, 0.72


@njit(cache=True, fastmath=True)
def _pose_and_camera(rec, P):
    p, y, r = rec[POSE0], rec[POSE0 + 1], rec[POSE0 + 2]
    cp, sp, cy, sy, cr, sr = math.cos(p), math.sin(p), math.cos(y), math.sin(y), math.cos(r), math.sin(r)
    # R = Rz(roll) @ Ry(yaw) @ Rx(pitch)
    P[0] = cr * cy
    P[1] = cr * sy * sp - sr * cp
    P[2] = cr * sy * cp + sr * sp
    P[3] = sr * cy
    P[4] = sr * sy * sp + cr * cp
    P[5] = sr * sy * cp - cr * sp
    P[6] = -sy
    P[7] = cy * sp
    P[8] = cy * cp
    P[9] = min(max(65.0 * math.exp(0.25 * rec[NOISE0 + N_DISTANCE]), 40.0), 120.0)


@njit(cache=True, fastmath=True)
def _eyes_open(rec, P, shape_eye):
    """Eyelid apertures (P[45:47]) and how far the lips part (P[57]) from the expression."""
    e = rec[EXPR0:]
    P[57] = min(_one_sided(e[JAW_OPEN]) + 0.5 * _one_sided(e[LOWER_LIP_DOWN]) + 0.5 * _one_sided(e[UPPER_LIP_UP]), 1.0) ** 0.5
    base = 1.0 + 0.06 * shape_eye + 0.05 * e[BROW_RAISE]
    for side, own in ((0, EYE_CLOSE_L), (1, EYE_CLOSE_R)):
        c = 0.55 * _one_sided(e[own]) + 0.55 * _one_sided(e[BLINK]) + 0.3 * _one_sided(e[SQUINT])
        P[45 + side] = min(max(base - c, 0.0), 1.15)


# Gaze: people in photographs mostly look at the camera, so the eyes turn against the head by
# GAZE_FOLLOW of the way towards it, plus a per-image glance (standard deviations in radians, from
# the noise block), within the eye's comfortable range. EYE_RADIUS (cm) turns the angle into the
# iris's offset on the face plane.
GAZE_FOLLOW = 0.8
GAZE_SD_U, GAZE_SD_V = 0.12, 0.08
GAZE_MAX = 0.45  # sin of ~27 deg
EYE_RADIUS = 1.2


@njit(cache=True, fastmath=True)
def _gaze(rec, P):
    """Iris offset (P[47], P[48], cm on the face plane) and foreshortening (P[49], P[50]).

    The direction to the camera in head coordinates is the third row of the pose matrix (P[6:9]).
    """
    gu = GAZE_FOLLOW * P[6] + GAZE_SD_U * rec[NOISE0 + N_GAZE_U]
    gv = GAZE_FOLLOW * P[7] + GAZE_SD_V * rec[NOISE0 + N_GAZE_V]
    gu = min(max(gu, -GAZE_MAX), GAZE_MAX)
    gv = min(max(gv, -GAZE_MAX), GAZE_MAX)
    P[47] = EYE_RADIUS * gu
    P[48] = EYE_RADIUS * gv
    P[49] = 1.0 / math.sqrt(1.0 - gu * gu)
    P[50] = 1.0 / math.sqrt(1.0 - gv * gv)


@njit(cache=True, fastmath=True, inline="always")
def _one_sided(z):
    """max(z, 0)^2 / (max(z, 0) + 0.3): zero for z <= 0, smooth at 0, ~z - 0.3 for large z."""
    if z <= 0.0:
        return 0.0
    return z * z / (z + 0.3)


# Named shape components (basis._shape_components) that vary with population (expression_coeffs).
POP_CHEEKBONES, POP_NOSE_WIDTH, POP_BRIDGE, POP_EYE_SPACING, POP_TILT, POP_EYE_DEPTH = 4, 11, 12, 15, 17, 19
POP_BROW_RIDGE, POP_MOUTH_WIDTH, POP_UPPER_LIP, POP_LOWER_LIP = 20, 24, 25, 26


@njit(cache=True)
def expression_coeffs(coeffs, one_sided, out):
    """Blend weights [B, 144]: shape as is but for the trait components (sex, age, beard, hair; see
    ``traits``), expressions with the one-sided ones rectified."""
    for b in range(coeffs.shape[0]):
        for k in range(N_SHAPE):
            out[b, k] = coeffs[b, SHAPE0 + k]
        rec = coeffs[b].astype(np.float64)
        sex, age, hair_len, curl, bald, stubble, moustache, goatee, full, length = traits(rec)
        out[b, S_SEX] = 1.6 * sex
        out[b, S_AGE] = smoothstep(0.3, 1.0, age)
        zw = rec[SHAPE0 + S_WEIGHT]
        out[b, S_WEIGHT] = zw + 0.3 * zw * abs(zw) if zw > 0.0 else 0.8 * zw  # more heavy than very thin people
        out[b, S_BEARD] = (full + 0.4 * goatee * (1.0 - full)) * (0.3 + 0.9 * length)
        out[b, S_LONG_HAIR] = smoothstep(0.4, 0.95, hair_len) * (0.7 + 0.3 * curl)
        out[b, S_HAIR_VOLUME] = (0.7 * rec[SHAPE0 + S_HAIR_VOLUME] + 1.6 * curl * hair_len) * (1.0 - bald)
        # Features that vary together across populations: with the skin's melanin (the first
        # appearance value) a wider nose with a lower bridge, fuller and wider lips; with a flat
        # midface (S_MIDFACE) wide cheekbones, a low bridge and brow ridge, shallow-set eyes with an
        # upward tilt set further apart. Linear in the record, like the components themselves.
        za, zm = rec[ALB0], rec[SHAPE0 + S_MIDFACE]
        out[b, POP_NOSE_WIDTH] += 0.9 * za + 0.3 * zm
        out[b, POP_BRIDGE] += -0.6 * za - 0.5 * zm
        out[b, S_LIPS] += 0.8 * za - 0.2 * zm
        out[b, POP_UPPER_LIP] += 0.4 * za
        out[b, POP_LOWER_LIP] += 0.4 * za
        out[b, POP_MOUTH_WIDTH] += 0.3 * za
        out[b, POP_BROW_RIDGE] -= 0.4 * zm
        out[b, POP_EYE_DEPTH] -= 0.5 * zm
        out[b, POP_TILT] += 0.5 * zm
        out[b, POP_CHEEKBONES] += 0.5 * zm
        out[b, POP_EYE_SPACING] += 0.4 * zm + 0.3 * za
        for k in range(N_EXPR):
            z = coeffs[b, EXPR0 + k]
            out[b, N_SHAPE + k] = _one_sided(z) if one_sided[k] else z


@njit(cache=True, fastmath=True)
def _fit_similarity(src, dst, M):
    """Least-squares similarity (rotation, uniform scale, translation) mapping src [5,2] onto dst."""
    n = src.shape[0]
    sx = sy = dx = dy = 0.0
    for i in range(n):
        sx += src[i, 0]
        sy += src[i, 1]
        dx += dst[i, 0]
        dy += dst[i, 1]
    sx /= n
    sy /= n
    dx /= n
    dy /= n
    num_a = num_b = den = 0.0
    for i in range(n):
        px, py = src[i, 0] - sx, src[i, 1] - sy
        qx, qy = dst[i, 0] - dx, dst[i, 1] - dy
        num_a += px * qx + py * qy
        num_b += px * qy - py * qx
        den += px * px + py * py
    a, b = num_a / den, num_b / den
    M[0], M[1] = a, b
    M[2] = dx - (a * sx - b * sy)
    M[3] = dy - (b * sx + a * sy)


@njit(cache=True, fastmath=True)
def _bg_at(grid, xi, yi):
    """Background colour at a pixel (a Vec4), bilinear between the nodes of the 4-pixel grid
    ([rows, cols, 4]: RGB and an unused lane, so that a node is one vector load)."""
    gx, gy = xi >> 2, yi >> 2
    fx, fy = (xi & 3) * 0.25, (yi & 3) * 0.25
    top = load4(grid, gy, gx)
    bottom = load4(grid, gy + 1, gx)
    top = top + (load4(grid, gy, gx + 1) - top) * fx
    bottom = bottom + (load4(grid, gy + 1, gx + 1) - bottom) * fx
    return top + (bottom - top) * fy


# Auto-exposure: a camera meters the scene and sets its gain so that a face lands near mid-grey,
# which is why a dark-skinned face in dim light still shows its features in a photograph. The gain
# makes up only part of the distance to the target (EXPOSURE_STRENGTH < 1), so lighting keeps its
# variety, and stays within a camera-like range. Measured with bench/quality.py's detector on 3,000
# images: the darkest quarter of skin tones went from 83% to 87% found at |yaw| < 15 degrees.
EXPOSURE_TARGET = 0.45
EXPOSURE_STRENGTH = 0.7
EXPOSURE_MIN, EXPOSURE_MAX = 0.8, 2.2


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def exposure(s, n):
    """Gain that brings the visible face's mean luminance towards EXPOSURE_TARGET.

    The brightness is estimated from the lit albedo (albedo x irradiance, LIT[:, 0:3] x LIT[:, 4:7])
    at the visible vertices of the face's front, before any pixel is shaded: ``s`` is the sum of
    their luminances and ``n`` their number, both summed up in the per-vertex lighting pass.
    """
    if n == 0:
        return 1.0
    mean = s / n
    return min(max((EXPOSURE_TARGET / max(mean, 1e-3)) ** EXPOSURE_STRENGTH, EXPOSURE_MIN), EXPOSURE_MAX)


@njit(cache=True, fastmath=True, error_model="numpy")
def render_one(
    rec, geo, albmod, mesh_tris, two_sided, feat_ptr, feat_tris, feat_box, dflags, uv, front, hair_w, beard_w,
    blush_w, eye_w, nose_w, cavity, lm_i, lm_w, template, tex_noise, img, lm_out, vis_out,
    V, SX, SY, SZ, NRM, LIT, zbuf, tid, bary, col, mask, hsum, cov, P, bp, ear0, used, won, edges,
):
    """Render one record into ``img`` [H, W, 3] uint8; returns the skin-tone value in [0, 1]."""
    h, w = img.shape[0], img.shape[1]
    nv = V.shape[0]
    tone = appearance(rec, P)
    seed = int(abs(rec[NOISE0 + N_SEED]) * 1.0e6) & 0xFFFFFF
    image_switches(seed, P)
    _pose_and_camera(rec, P)
    _eyes_open(rec, P, rec[SHAPE0 + 16])
    _gaze(rec, P)
    D = P[9]
    # Pose, then perspective projection to normalised image coordinates (y down).
    for i in range(nv):
        x, y, z = geo[3 * i], geo[3 * i + 1], geo[3 * i + 2]
        V[i, 0] = P[0] * x + P[1] * y + P[2] * z
        V[i, 1] = P[3] * x + P[4] * y + P[5] * z
        V[i, 2] = P[6] * x + P[7] * y + P[8] * z
    src = np.empty((5, 2))
    lmz = np.empty(5)
    for j in range(5):
        X = Y = Z = 0.0
        for k in range(4):
            vi, wk = lm_i[j, k], lm_w[j, k]
            X += wk * V[vi, 0]
            Y += wk * V[vi, 1]
            Z += wk * V[vi, 2]
        zc = D - Z
        src[j, 0] = X / zc
        src[j, 1] = -Y / zc
        lmz[j] = zc
    M = np.empty(4)
    _fit_similarity(src, template, M)
    a, b, tx, ty = M[0], M[1], M[2], M[3]
    scale = math.sqrt(a * a + b * b)
    for j in range(5):
        lm_out[j, 0] = a * src[j, 0] - b * src[j, 1] + tx
        lm_out[j, 1] = b * src[j, 0] + a * src[j, 1] + ty
    for i in range(nv):
        zc = D - V[i, 2]
        xn, yn = V[i, 0] / zc, -V[i, 1] / zc
        SX[i] = a * xn - b * yn + tx
        SY[i] = b * xn + a * yn + ty
        SZ[i] = zc
    rasterise(SX, SY, SZ, mesh_tris, two_sided, zbuf, tid, bary)
    for j in range(5):
        xi, yi = int(round(lm_out[j, 0])), int(round(lm_out[j, 1]))
        vis_out[j] = False
        if 0 <= xi < w and 0 <= yi < h:
            # Hidden when a nearer surface covers its pixel (a point on the silhouette stays visible).
            vis_out[j] = tid[yi, xi] < 0 or lmz[j] <= zbuf[yi, xi] + 0.5
    # Per-vertex work only for the vertices of triangles that won a pixel: the others (the back
    # of the head, hidden or off-image parts) are never interpolated. Also the foreground mask for
    # the edge anti-aliasing below. Two branch-free passes (``won`` is shifted by one, so the
    # background's -1 lands in a slot of its own); the mask's pass vectorises. ~2% of a render faster
    # than one pass with a branch.
    won[:] = False
    for yi in range(h):
        for xi in range(w):
            mask[yi, xi] = tid[yi, xi] >= 0
    for yi in range(h):
        for xi in range(w):
            won[np.uint64(tid[yi, xi] + 1)] = True  # won[0] collects the background's -1
    used[:] = False
    for t in range(mesh_tris.shape[0]):
        if won[t + 1]:
            used[np.uint64(mesh_tris[t, 0])] = True
            used[np.uint64(mesh_tris[t, 1])] = True
            used[np.uint64(mesh_tris[t, 2])] = True
    vertex_normals(V, mesh_tris, used, NRM)
    gamma = np.empty((SH_CHANNELS, SH_BANDS))
    for c in range(SH_CHANNELS):
        for k in range(SH_BANDS):
            gamma[c, k] = rec[LIGHT0 + SH_BANDS * c + k]
        gamma[c, 0] += SH_DC_OFFSET
    # Dominant light direction for the highlight, from the first-order terms (Y1 = -y, Y3 = -x).
    lx = -(gamma[0, 3] + gamma[1, 3] + gamma[2, 3]) / 3.0
    ly = -(gamma[0, 1] + gamma[1, 1] + gamma[2, 1]) / 3.0
    lz = (gamma[0, 2] + gamma[1, 2] + gamma[2, 2]) / 3.0
    ln = math.sqrt(lx * lx + ly * ly + lz * lz) + 1e-9
    hx, hy, hz = lx / ln, ly / ln, lz / ln + 1.0
    hn = math.sqrt(hx * hx + hy * hy + hz * hz) + 1e-9
    hx, hy, hz = hx / hn, hy / hn, hz / hn
    spec_c = np.empty(3)
    for c in range(3):
        spec_c[c] = 1.7724538509 * math.sqrt(gamma[c, 1] ** 2 + gamma[c, 2] ** 2 + gamma[c, 3] ** 2)
    # Per-vertex albedo (skin colour, random colour fields, cheeks, eye area, nose tip), irradiance,
    # highlight terms and hairline level. Second-order SH irradiance is smooth, so evaluating it at
    # the vertices and interpolating loses nothing visible and saves most of the per-pixel work.
    sr, sg, sb = P[14], P[15], P[16]
    # Tuples, not arrays, into the inlined helpers (see shading.paint).
    Pt = to_fixed_tuple(P, N_PARAMS)
    G = sh_rgb(gamma)  # nine vectors (RGB lanes), see shading.sh_irradiance
    lum, n_lum = 0.0, 0  # for the exposure: luminance of the lit albedo at the visible front vertices
    for i in range(nv):
        if not used[i]:
            continue
        m0, m1, m2 = 1.0 + albmod[3 * i], 1.0 + albmod[3 * i + 1], 1.0 + albmod[3 * i + 2]
        bl = P[32] * blush_w[i]
        ea = (1.0 - P[33] * eye_w[i]) * cavity[i]
        nr = 0.08 * P[43] * nose_w[i]
        LIT[i, 0] = sr * m0 * ea
        LIT[i, 1] = sg * m1 * ea * (1.0 - 0.5 * bl - nr)
        LIT[i, 2] = sb * m2 * ea * (1.0 - 0.4 * bl - nr)
        nx, ny, nz = NRM[i, 0], NRM[i, 1], NRM[i, 2]
        if i >= ear0:
            if nz < 0.0:  # two-sided ears show their lit side
                nx, ny, nz = -nx, -ny, -nz
        elif nz < -0.6:  # faces away: only culled triangles use it
            LIT[i, 3] = LIT[i, 4] = LIT[i, 5] = LIT[i, 6] = LIT[i, 7] = 0.0
            LIT[i, 8] = -10.0
            n_lum += front[i] > 0.5  # unlit: adds nothing to ``lum`` but counts
            continue
        irr = sh_irradiance(G, nx, ny, nz)
        ir, ig, ib = lane(irr, 0), lane(irr, 1), lane(irr, 2)
        LIT[i, 4], LIT[i, 5], LIT[i, 6] = max(ir, 0.0), max(ig, 0.0), max(ib, 0.0)
        nh = nx * hx + ny * hy + nz * hz
        s12 = 0.0
        if nh > 0.0:
            n2 = nh * nh
            n4 = n2 * n2
            s12 = n4 * n4 * n4
        LIT[i, 3] = s12
        LIT[i, 7] = s12 * s12 * s12 * s12
        LIT[i, 8] = hair_level(
            uv[i, 1], hair_w[i, 0], hair_w[i, 1], hair_w[i, 2], hair_w[i, 3], hair_w[i, 4], hair_w[i, 5], hair_w[i, 6],
            hair_w[i, 7], Pt,
        )
        if front[i] > 0.5:
            lum += 0.299 * LIT[i, 0] * LIT[i, 4] + 0.587 * LIT[i, 1] * LIT[i, 5] + 0.114 * LIT[i, 2] * LIT[i, 6]
            n_lum += 1
    background_params(rec[NOISE0:], h, w, bp)
    aa = 0.75 * D / scale  # one pixel in face-plane centimetres
    feature_reach(P, aa, feat_ptr, feat_tris, feat_box, dflags)
    wb = bp[37]
    k = exposure(lum, n_lum)
    kr, kg, kb = k * (1.0 + wb), k, k * (1.0 - wb)
    sigma = bp[38]
    oy, ox = int(hash_uniform(seed, 0) * 256.0), int(hash_uniform(seed, 1) * 256.0)
    gh, gw = h // 4 + 2, w // 4 + 2
    # Edge anti-aliasing needs a coverage estimate: the foreground mask filtered with a 3x3 tent
    # (separable, in integer sixteenths); 0 < cov < 16 only next to the silhouette. The image's
    # edges are replicated; with them outside the row loops, the loops vectorise (~2% of a render).
    for yi in range(h):
        hsum[yi, 0] = 3 * mask[yi, 0] + mask[yi, 1]
        for xi in range(1, w - 1):
            hsum[yi, xi] = mask[yi, xi - 1] + 2 * mask[yi, xi] + mask[yi, xi + 1]
        hsum[yi, w - 1] = mask[yi, w - 2] + 3 * mask[yi, w - 1]
    for yi in range(h):
        up = yi - 1 if yi > 0 else yi
        dn = yi + 1 if yi < h - 1 else yi
        for xi in range(w):
            cov[yi, xi] = hsum[up, xi] + 2 * hsum[yi, xi] + hsum[dn, xi]
    # Backgrounds are smooth: evaluated on a 4-pixel grid (in vectors, see background_grid) and
    # interpolated at the pixels that show them.
    grid = np.empty((gh, gw, 4))
    background_grid(bp, grid)
    gain = vec3(kr, kg, kb)
    spec_rgb = vec3(spec_c[0], spec_c[1], spec_c[2])
    n_edges = 0
    for yi in range(h):
        for xi in range(w):
            t = tid[yi, xi]
            if t < 0:
                c = _bg_at(grid, xi, yi)
            else:
                tu = np.uint64(t)  # unsigned: no negative-index arithmetic (see raster.rasterise)
                i0, i1, i2 = mesh_tris[tu, 0], mesh_tris[tu, 1], mesh_tris[tu, 2]
                w0, w1 = bary[yi, xi, 0], bary[yi, xi, 1]
                w2 = 1.0 - w0 - w1
                # One contiguous row of attributes per vertex (layout as in LIT), interpolated in
                # 4-wide vectors (``simd``): albedo and the (n.h)^12 highlight, irradiance and the
                # ^48 highlight, then hair level, u, v, front; the beard weight alone. Colours stay
                # vectors (RGB in lanes 0-2) through the painted details to the 8-bit output.
                alb, irr, hair_uv, bw = interp_rows(LIT, i0, i1, i2, np.float64(w0), np.float64(w1), w2)
                hl12, hl48 = lane(alb, 3), lane(irr, 3)
                a, spec, shin, occ = paint(
                    alb, lane(hair_uv, 1), lane(hair_uv, 2), lane(hair_uv, 3), lane(hair_uv, 0), dflags[tu], bw, Pt, aa
                )
                s = (hl12 + (hl48 - hl12) * (0.5 * shin)) * spec
                c = (a * irr + spec_rgb * s) * occ
            cv = cov[yi, xi]
            if cv != 0 and cv != 16:
                # Only silhouette pixels are read back (a covered pixel next to an uncovered one
                # has cov < 16 itself), so only they keep their linear colour.
                col[yi, xi, 0], col[yi, xi, 1], col[yi, xi, 2] = lane(c, 0), lane(c, 1), lane(c, 2)
                edges[n_edges, 0], edges[n_edges, 1] = yi, xi  # listed: the pass below visits only these
                n_edges += 1
            else:
                store_rgb8(img, yi, xi, c, gain, tex_noise[(yi + oy) & 255, (xi + ox) & 255] * sigma)
    # Silhouette pixels, now that every neighbour's colour is known.
    for k in range(n_edges):
        yi, xi = edges[k, 0], edges[k, 1]
        cv = cov[yi, xi]
        if mask[yi, xi]:
            fg = vec3(col[yi, xi, 0], col[yi, xi, 1], col[yi, xi, 2])
            bg = _bg_at(grid, xi, yi)
        else:
            # Foreground colour here: the tent-weighted mean of the covered neighbours.
            fr = fg_ = fb = 0.0
            for dyy in range(-1, 2):
                yy = min(max(yi + dyy, 0), h - 1)
                for dxx in range(-1, 2):
                    xx = min(max(xi + dxx, 0), w - 1)
                    if mask[yy, xx]:
                        wt = (2 - abs(dyy)) * (2 - abs(dxx))
                        fr += wt * col[yy, xx, 0]
                        fg_ += wt * col[yy, xx, 1]
                        fb += wt * col[yy, xx, 2]
            fg = vec3(fr / cv, fg_ / cv, fb / cv)
            bg = vec3(col[yi, xi, 0], col[yi, xi, 1], col[yi, xi, 2])
        c = bg + (fg - bg) * (cv / 16.0)
        store_rgb8(img, yi, xi, c, gain, tex_noise[(yi + oy) & 255, (xi + ox) & 255] * sigma)
    return tone


def attribute_rows(uv: np.ndarray, front: np.ndarray, beard_w: np.ndarray) -> np.ndarray:
    """Per-vertex attribute rows [N, N_ATTR] for ``render_batch``, in the pixel pass's vector lanes:
    albedo RGB and the highlight (n.h)^12, irradiance RGB and (n.h)^48, hairline level (written per
    render, for the vertices it uses), then u, v, front, beard weight (static, set here). float64:
    the shader's arithmetic is float64, and converting 39 gathered values per pixel cost ~5%.
    Allocated once per backend: setting it up for every call cost ~2% of a one-record render."""
    rows = np.zeros((len(uv), N_ATTR))
    rows[:, 9], rows[:, 10], rows[:, 11], rows[:, 12] = uv[:, 0], uv[:, 1], front, beard_w
    return rows


@njit(cache=True, error_model="numpy")
def render_batch(
    coeffs, geo, albmod, mesh_tris, two_sided, tri_flags, feat_ptr, feat_tris, feat_box, uv, front, hair_w, beard_w,
    blush_w, eye_w, nose_w, cavity, lm_i, lm_w, template, tex_noise, images, landmarks, visible, tones, ear0, LIT,
):
    """Render ``coeffs`` [B, 256] into ``images``, ``landmarks``, ``visible`` and ``tones``. ``LIT`` is
    the per-vertex attribute rows from ``attribute_rows``, kept by the caller between batches."""
    nb, h, w = images.shape[0], images.shape[1], images.shape[2]
    nv = uv.shape[0]
    V = np.empty((nv, 3))
    SX, SY, SZ = np.empty(nv), np.empty(nv), np.empty(nv)
    NRM = np.empty((nv, 3))
    zbuf = np.empty((h, w), np.float32)
    tid = np.empty((h, w), np.int32)
    bary = np.empty((h, w, 2), np.float32)
    col = np.empty((h, w, 3), np.float32)
    mask = np.empty((h, w), np.uint8)
    hsum = np.empty((h, w), np.uint8)
    cov = np.empty((h, w), np.uint8)
    P = np.zeros(N_PARAMS)
    bp = np.zeros(BG_PARAMS)
    used = np.zeros(nv, np.bool_)
    won = np.zeros(mesh_tris.shape[0] + 1, np.bool_)
    edges = np.empty((h * w, 2), np.int64)  # a render's silhouette pixels, in scan order
    dflags = tri_flags.copy()  # this render's feature flags (shading.feature_reach)
    for b in range(nb):
        P[:] = 0.0
        tones[b] = render_one(
            coeffs[b].astype(np.float64), geo[b], albmod[b], mesh_tris, two_sided, feat_ptr, feat_tris, feat_box, dflags,
            uv, front, hair_w, beard_w, blush_w, eye_w, nose_w, cavity, lm_i, lm_w, template, tex_noise, images[b],
            landmarks[b], visible[b],
            V, SX, SY, SZ, NRM, LIT, zbuf, tid, bary, col, mask, hsum, cov, P, bp, ear0, used, won, edges,
        )
