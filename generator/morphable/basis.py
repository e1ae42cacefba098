"""Identity, expression and appearance components of the morphable head.

Each shape or expression component is a smooth displacement field over the mean head, scaled so
that a standardised coefficient of 1 is one standard deviation of adult variation. The named
(semantic) shape components take their standard deviations from published anthropometry
(Farkas, *Anthropometry of the Head and Face*, 2nd ed., 1994, North American adult norms; and
Zhuang et al., "Facial anthropometric differences among gender, ethnicity, and age groups",
Ann. Occup. Hyg. 54(4), 2010), rounded and pooled over sexes and populations:

    head breadth eu-eu          SD 6 mm      face length n-gn        SD 7 mm
    bizygomatic breadth zy-zy   SD 6 mm      bigonial breadth go-go  SD 7 mm
    head length g-op            SD 7 mm      nose height n-sn        SD 4 mm
    nose width al-al            SD 3.5 mm    nasal tip protrusion    SD 3 mm
    intercanthal en-en          SD 3 mm      palpebral fissure ex-en SD 2 mm (canthal tilt SD 3 deg)
    mouth width ch-ch           SD 4 mm      upper / lower lip height SD 2 mm
    chin height sto-gn          SD 4 mm      ear length sa-sba       SD 4 mm

The remaining shape components are smooth random bumps (1-3.5 cm wide, about 2 mm high), mostly mirror-symmetric, for
the differences in facial form that a few dozen named measurements miss (their size was set so
that an off-the-shelf face recogniser separates identities about as well as it does for
different real people of similar age, see ``bench/quality.py``). Expressions are
named facial actions (after FACS action units) plus small local random deformations. Appearance
("albedo") components are named colour and hair parameters followed by smooth random colour fields;
the renderer turns the named ones into skin, hair, iris and lip colours (see ``appearance``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mesh import CHIN_Y, EYE_X, EYE_Y, MOUTH_HALF_W, MOUTH_Y, NOSE_TIP_Y, Mesh

N_SHAPE, N_EXPR, N_ALBEDO = 80, 64, 80
# Named appearance parameters (the first N_APPEARANCE albedo coefficients); see ``appearance``.
APPEARANCE = (
    "melanin", "haemoglobin", "olive", "hair_dark", "hair_red", "hair_grey", "iris_dark", "iris_hue",
    "lip_red", "lip_dark", "brow_density", "brow_thickness", "beard", "blush", "eye_shadow", "texture",
    "hairline", "hair_length", "fringe", "shine", "brow_colour", "pattern_u", "pattern_v", "lashes",
    "sclera", "nose_red", "brow_arch", "lip_contrast",
    # Added in version 7 (these slots were random colour fields before).
    "beard_style", "glasses", "glasses_shape", "glasses_size", "glasses_frame", "glasses_tint", "hair_texture",
    "parting", "baldness", "freckles", "moles", "mole_u", "mole_v", "wrinkles", "makeup", "brow_length", "blemishes",
    "eye_shape", "eye_crease", "beard_line", "buzz_cut", "brow_height", "brow_slope",
)
N_APPEARANCE = len(APPEARANCE)
# Expressions whose coefficient only acts in one direction (a jaw cannot open negatively).
ONE_SIDED_EXPR = (1, 3, 4, 5, 6, 12, 15, 17, 21)
EYE_CLOSE_L, EYE_CLOSE_R, BLINK, SQUINT, BROW_RAISE = 4, 5, 6, 17, 2
# Named shape components added in version 7 (these were random bumps before); the renderer turns
# the record's value into the component's weight (``render.expression_coeffs``) and reads the sex
# and age latents for the appearance too.
S_EYE_SIZE, S_HAIR_VOLUME = 16, 38
S_SEX, S_WEIGHT, S_AGE, S_BEARD, S_LONG_HAIR = 39, 40, 41, 42, 43
S_NOSE_HUMP, S_MIDFACE, S_LIPS, S_FACE_SHAPE, S_ROUND = 44, 45, 46, 47, 48
N_SHAPE_NAMED = 49
JAW_OPEN, LOWER_LIP_DOWN, UPPER_LIP_UP = 1, 15, 21


@dataclass
class Basis:
    shape: np.ndarray  # [80, N*3] float32
    expr: np.ndarray  # [64, N*3] float32
    albedo: np.ndarray  # [80 - N_APPEARANCE, N*3] float32: relative colour modulation fields
    beard: np.ndarray  # [N] beard-area weight
    blush: np.ndarray  # [N] cheek weight
    eye_area: np.ndarray  # [N] weight around the eyes (shadow)
    nose: np.ndarray  # [N] nose-tip weight
    cavity: np.ndarray  # [N] ambient-occlusion factor of the mean head (1 open, < 1 in creases)


def _g(dx, dy, sx, sy):
    return np.exp(-0.5 * ((dx / sx) ** 2 + (dy / sy) ** 2))


def _smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class _Fields:
    """Helpers over the mean mesh for writing displacement fields compactly."""

    def __init__(self, mesh: Mesh):
        self.m = mesh
        self.p = mesh.verts
        self.u, self.v = mesh.uv[:, 0], mesh.uv[:, 1]
        self.au = np.abs(self.u)
        self.sgn = np.sign(self.u)
        self.front = np.clip(mesh.front, 0.0, 1.0)
        self.is_ear = np.zeros(len(self.p), bool)
        self.is_ear[mesh.ear_range[0] : mesh.ear_range[1]] = True
        self.face = self.front * ~self.is_ear

    def vec(self, dx=0.0, dy=0.0, dz=0.0) -> np.ndarray:
        out = np.zeros_like(self.p)
        out[:, 0], out[:, 1], out[:, 2] = dx, dy, dz
        return out


def _shape_components(f: _Fields, rng: np.random.Generator) -> list[np.ndarray]:
    p, u, v, au, sgn, face = f.p, f.u, f.v, f.au, f.sgn, f.face
    below_eyes = _smoothstep(0.5, -2.0, v)
    jaw = _g(0.0, v + 9.0, 1.0, 2.6)
    eye = _g(au - EYE_X, v - EYE_Y, 1.5, 1.05) * face
    nose = np.exp(-0.5 * (u / 1.6) ** 2) * _smoothstep(1.2, 0.2, v) * _smoothstep(-5.3, -4.3, v) * face
    mouth = _g(u, v - MOUTH_Y, 3.0, 1.5) * face
    chin = _g(u, v - (CHIN_Y + 1.5), 2.2, 1.6) * face
    comps = [
        f.vec(dx=0.30 * p[:, 0] / 7.5),  # head breadth
        f.vec(dy=0.70 * np.clip(v / CHIN_Y, 0.0, 1.0) * below_eyes + 0.7 * (v < CHIN_Y)),  # face length
        f.vec(dz=-0.35 * np.clip(-p[:, 2] / 9.0, 0.0, 1.0)),  # head length (occiput)
        f.vec(dx=0.35 * sgn * jaw * np.clip(au / 5.0, 0.0, 1.0)),  # bigonial (jaw) breadth
        f.vec(dx=0.30 * sgn * _g(au - 6.6, v + 1.6, 1.4, 1.5)),  # bizygomatic breadth
        f.vec(dz=0.35 * chin),  # chin projection
        f.vec(dy=-0.40 * chin),  # chin height
        f.vec(dx=0.25 * u / 2.0 * chin),  # chin width
        f.vec(dz=0.30 * _g(au - 4.5, v + 1.9, 1.3, 1.0) * face),  # cheekbone prominence
        f.vec(dz=0.35 * _g(au - 4.4, v + 5.6, 1.6, 1.8) * face, dx=0.2 * sgn * _g(au - 5.5, v + 5.6, 1.6, 1.8)),  # cheeks
        f.vec(dy=-0.40 * nose * np.clip((1.0 - v) / 5.0, 0.0, 1.0)),  # nose height (n-sn)
        f.vec(dx=0.18 * sgn * _g(au - 1.2, v + 3.9, 0.9, 0.9) * face),  # nose width
        f.vec(dz=0.28 * _g(u, v + 1.6, 0.9, 1.7) * face),  # nasal bridge height
        f.vec(dz=0.30 * _g(u, v - NOSE_TIP_Y, 0.8, 0.7) * face),  # nasal tip protrusion
        f.vec(dy=0.20 * _g(u, v + 3.6, 0.9, 0.6) * face),  # tip rotation (up-turned)
        f.vec(dx=0.15 * sgn * eye),  # intercanthal width (eye spacing)
        f.vec(dx=0.07 * (au - EYE_X) * sgn * eye, dy=0.07 * (v - EYE_Y) * eye),  # eye size
        f.vec(dy=0.055 * (au - EYE_X) * eye),  # canthal tilt
        f.vec(dy=0.18 * eye),  # eye height
        f.vec(dz=-0.25 * _g(au - EYE_X, v, 1.3, 0.9) * face),  # eye depth
        f.vec(dz=0.25 * _g(au - 2.7, v - 1.7, 2.0, 0.8) * face),  # brow ridge
        f.vec(dy=0.22 * _g(au - 3.0, v - 1.9, 2.2, 0.8) * face),  # brow height
        f.vec(dz=-0.40 * np.clip((v - 1.0) / 5.0, 0.0, 1.0) * face),  # forehead slope
        f.vec(dy=0.45 * np.clip((v - 2.0) / 9.8, 0.0, 1.0)),  # cranial height
        f.vec(dx=0.20 * sgn * _g(au - MOUTH_HALF_W, v - MOUTH_Y, 0.9, 0.9) * face),  # mouth width
        f.vec(dy=0.16 * _g(u, v - (MOUTH_Y + 0.8), 2.2, 0.35) * face, dz=0.12 * _g(u, v - (MOUTH_Y + 0.45), 2.0, 0.4) * face),  # upper lip
        f.vec(dy=-0.18 * _g(u, v - (MOUTH_Y - 1.0), 2.0, 0.4) * face, dz=0.14 * _g(u, v - (MOUTH_Y - 0.55), 1.9, 0.45) * face),  # lower lip
        f.vec(dy=-0.22 * mouth * _smoothstep(-4.6, -5.6, v)),  # philtrum length
        f.vec(dy=-0.25 * jaw * np.clip(au / 5.5, 0.0, 1.0) ** 2),  # gonial angle (jaw drop at the back)
        f.vec(dz=-0.30 * _smoothstep(-11.0, -12.5, v) * _smoothstep(-15.0, -12.5, v) * (p[:, 2] > 0)),  # under-chin fullness
        f.vec(dx=0.30 * p[:, 0] / 5.3 * _smoothstep(-11.0, -13.0, v)),  # neck width
        f.vec(dx=0.25 * np.sign(p[:, 0]) * f.is_ear * np.clip((np.abs(p[:, 0]) - 6.5) / 2.0, 0.0, 1.0)),  # ear protrusion
        f.vec(dy=0.25 * f.is_ear * (v - (-1.9)) / 3.0),  # ear length
        f.vec(dz=0.22 * _g(au - 3.2, v + 1.3, 1.2, 0.5) * face),  # under-eye fullness
        f.vec(dz=-0.18 * _g(au - 2.7, v + 5.0, 0.6, 1.4) * face),  # nasolabial depth
        f.vec(dz=-0.20 * _g(au - 6.0, v - 1.5, 0.9, 1.4) * face),  # temple hollows
        f.vec(dx=0.10 * _g(u + 3.0, v + 2.0, 3.0, 4.0) * face),  # mild asymmetry
        f.vec(dz=0.2 * _g(u, v - 3.5, 3.0, 2.0) * face),  # forehead bulge
    ]
    # Hair volume: the scalp grows outwards where hair usually is.
    scalp = _smoothstep(4.5, 7.0, v) * (1 - f.face * 0.6) + (1 - f.face) * _smoothstep(-2.0, 2.0, v) * ~f.is_ear
    comps.append(f.m.normal_hint * (0.7 * np.clip(scalp, 0.0, 1.0))[:, None])
    comps += _trait_components(f, eye, nose, chin, jaw, below_eyes)
    # Fine-scale random bumps, mostly symmetric, on the face.
    while len(comps) < N_SHAPE:
        field = np.zeros_like(p)
        sym = rng.random() < 0.7
        for _ in range(rng.integers(1, 4)):
            cu, cv = rng.uniform(0.0, 5.5), rng.uniform(-11.0, 4.0)
            su, sv = rng.uniform(0.6, 1.8), rng.uniform(0.6, 1.8)
            amp = rng.normal(0.0, 0.2)
            w = _g(au - cu, v - cv, su, sv) if sym else _g(u - cu * rng.choice([-1, 1]), v - cv, su, sv)
            field[:, 2] += amp * w * face
            field[:, 1] += 0.3 * rng.normal(0.0, 0.1) * w * face
        comps.append(field)
    return comps[:N_SHAPE]


def _trait_components(f: _Fields, eye, nose, chin, jaw, below_eyes) -> list[np.ndarray]:
    """Shape components S_SEX .. S_ROUND: patterns of several features that vary together in people.

    A weight of +-1 is the typical extent (``render.expression_coeffs`` maps the record's value to it).
    """
    p, u, v, au, sgn, face = f.p, f.u, f.v, f.au, f.sgn, f.face
    g = _g
    front = np.clip(f.m.front, 0.0, 1.0)
    cheek = g(au - 4.2, v + 5.2, 1.7, 1.9) * face
    under_chin = _smoothstep(-11.0, -12.6, v) * _smoothstep(-15.5, -12.6, v) * (p[:, 2] > 0) * ~f.is_ear
    neck = _smoothstep(-11.0, -13.0, v) * ~f.is_ear
    lips_up = g(u, v - (MOUTH_Y + 0.45), 2.0, 0.4) * face
    lips_lo = g(u, v - (MOUTH_Y - 0.55), 1.9, 0.45) * face
    # Sex (+1 male, -1 female): half the mean difference between adult men and women (Farkas 1994):
    # wider jaw and taller, squarer chin, heavier brow ridge and glabella, a more sloping forehead,
    # a larger nose, thinner lips, flatter cheeks, a longer lower face, a thicker neck.
    sex = (
        f.vec(dx=0.20 * sgn * jaw * np.clip(au / 5.0, 0.0, 1.0) + 0.08 * u / 2.0 * chin + 0.30 * p[:, 0] / 5.3 * neck)
        + f.vec(dy=-0.25 * chin - 0.25 * np.clip(v / CHIN_Y, 0.0, 1.0) * below_eyes, dz=0.12 * chin)
        + f.vec(dz=0.28 * g(au - 2.6, v - 1.6, 1.8, 0.7) * face + 0.22 * g(u, v - 1.0, 1.0, 0.8) * face)
        + f.vec(dz=-0.25 * np.clip((v - 2.5) / 4.0, 0.0, 1.0) * face)
        + f.vec(dy=-0.15 * nose * np.clip((1.0 - v) / 5.0, 0.0, 1.0), dz=0.12 * g(u, v + 1.6, 0.9, 1.7) * face)
        + f.vec(dx=0.10 * sgn * g(au - 1.2, v + 3.9, 0.9, 0.9) * face, dz=0.10 * g(u, v - NOSE_TIP_Y, 0.8, 0.7) * face)
        + f.vec(dz=-0.10 * lips_up - 0.10 * lips_lo, dy=-0.05 * lips_up + 0.05 * lips_lo)
        + f.vec(dz=-0.12 * cheek)
        + f.vec(dx=-0.03 * (au - EYE_X) * sgn * eye, dy=-0.03 * (v - EYE_Y) * eye)
    )
    # Body weight (+ heavier): full lower cheeks and jowls, a wider jaw, a double chin, a thick neck,
    # eyes narrowed by the cheeks; thin (-): hollow cheeks.
    weight = (
        f.vec(dz=0.40 * cheek, dx=0.40 * sgn * g(au - 5.6, v + 6.5, 1.4, 2.6) * (front > 0.05) * ~f.is_ear)
        + f.vec(dx=0.25 * sgn * jaw * np.clip(au / 5.0, 0.0, 1.0))
        + f.vec(dz=0.45 * under_chin, dy=-0.35 * under_chin + 0.06 * g(au - EYE_X, v + 0.7, 1.2, 0.5) * face)
        + f.vec(dx=0.45 * p[:, 0] / 5.3 * neck)
        + f.vec(dz=-0.10 * g(au - 2.7, v + 5.0, 0.5, 1.4) * face)
    )
    # Age (sagging, 0 young .. 1 old; the renderer keeps the weight one-sided): jowls, deeper
    # nasolabial folds with the cheek fat above them dropping, bags under the eyes, drooping outer
    # brows and lids, thinner lips, a lower nose tip, longer ears, hollow temples.
    age = (
        f.vec(dy=-0.40 * g(au - 4.5, v + 9.4, 1.1, 1.0) * face, dx=0.15 * sgn * g(au - 4.8, v + 9.2, 1.1, 1.0) * face)
        + f.vec(dz=-0.22 * g(au - 2.7, v + 5.0, 0.45, 1.4) * face + 0.12 * g(au - 3.4, v + 4.6, 0.7, 1.1) * face)
        + f.vec(dy=-0.15 * g(au - 3.8, v + 4.0, 1.2, 1.2) * face)
        + f.vec(dz=0.18 * g(au - EYE_X, v + 1.05, 0.9, 0.3) * face)
        + f.vec(dy=-0.15 * g(au - 4.3, v - 1.5, 1.0, 0.6) * face - 0.05 * g(au - EYE_X - 0.4, v - 0.8, 1.0, 0.35) * face)
        + f.vec(dz=-0.10 * lips_up - 0.06 * lips_lo, dy=-0.08 * lips_up)
        + f.vec(dy=-0.12 * g(u, v - NOSE_TIP_Y, 0.8, 0.7) * face)
        + f.vec(dy=0.15 * f.is_ear * (v - (-1.9)) / 3.0)
        + f.vec(dz=-0.12 * g(au - 6.0, v - 1.5, 0.9, 1.4) * face)
    )
    # Beard volume: hair standing off the chin, jaw and under-chin, along the surface normal.
    nrm = _normals(f.m)
    bmask = (_smoothstep(-6.0, -8.5, v) * (front > 0.1) * np.clip(1.0 - (au / 6.3) ** 4, 0.0, 1.0) * ~f.is_ear
             * _smoothstep(-17.0, -13.0, v))
    bmask *= 0.45 + 0.55 * g(u, v + 11.8, 2.4, 2.5)
    beard = nrm * (0.9 * bmask)[:, None]
    # Long hair: a mass falling from the sides and back of the head past the ears to the shoulders,
    # radially outwards (the ears go under it).
    # It hangs straight down from the head's widest part: each point moves out to about the same
    # distance from the head's axis.
    side = _smoothstep(0.42, 0.08, f.m.front) * ~f.is_ear
    drop = _smoothstep(2.5, -1.5, v) * _smoothstep(-24.0, -18.0, v)
    radial = f.m.verts[:, [0, 2]].copy()
    radial[:, 1] -= -1.0  # about the skull's axis
    dist = np.linalg.norm(radial, axis=1, keepdims=True)
    radial /= dist + 1e-9
    amount = np.clip(8.4 - dist[:, 0], 0.4, 3.6) * side * drop + 0.5 * side * _smoothstep(7.0, 2.0, v) * _smoothstep(-4.0, 2.5, v)
    long_hair = f.vec(dx=amount * radial[:, 0], dz=amount * radial[:, 1])
    long_hair += f.vec(dx=-1.2 * np.sign(p[:, 0]) * f.is_ear * np.clip((np.abs(p[:, 0]) - 6.3) / 2.0, 0.0, 1.0))
    # Nasal profile: a dorsal hump (+) or a concave, scooped bridge (-).
    hump = f.vec(dz=0.22 * g(u, v + 1.7, 0.6, 0.8) * face - 0.05 * g(u, v - NOSE_TIP_Y, 0.7, 0.6) * face)
    # Midface: a low nasal root and bridge, a flat midface with forward, wider cheekbones, shallow
    # eye sockets and a flat brow (+), against a high bridge and deep-set eyes (-).
    midface = (
        f.vec(dz=-0.35 * g(u, v + 0.4, 0.9, 1.3) * face - 0.15 * g(u, v + 2.2, 0.7, 1.0) * face)
        + f.vec(dz=0.22 * g(au - 4.6, v + 2.0, 1.3, 1.0) * face, dx=0.15 * sgn * g(au - 6.3, v + 1.8, 1.2, 1.5))
        + f.vec(dz=0.18 * g(au - EYE_X, v, 1.2, 0.8) * face - 0.15 * g(au - 2.6, v - 1.7, 1.9, 0.7) * face)
    )
    lips = f.vec(dz=0.14 * lips_up + 0.16 * lips_lo, dy=0.10 * lips_up - 0.12 * lips_lo)
    # Face shape: wide temples and forehead tapering to a narrow chin (heart, +) against a wide,
    # square jaw under a narrower forehead (-).
    heart = (
        f.vec(dx=0.30 * sgn * g(au - 6.5, v - 2.5, 1.5, 3.0) * (front > -0.3))
        + f.vec(dx=-0.30 * sgn * jaw * np.clip(au / 5.0, 0.0, 1.0) - 0.15 * u / 2.0 * chin)
    )
    # Roundness: a shorter, wider face with full cheeks (+) against a long, narrow one (-).
    round_ = (
        f.vec(dy=0.30 * np.clip(v / CHIN_Y, 0.0, 1.0) * below_eyes)
        + f.vec(dx=0.30 * sgn * g(au - 5.8, v + 4.5, 1.6, 3.0) * (front > 0.0) * ~f.is_ear)
        + f.vec(dz=0.15 * cheek)
    )
    return [sex, weight, age, beard, long_hair, hump, midface, lips, heart, round_]


def _normals(mesh: Mesh) -> np.ndarray:
    """Unit vertex normals of the mean head (area-weighted)."""
    p, t = mesh.verts, mesh.tris
    fn = np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]])
    n = np.zeros_like(p)
    for k in range(3):
        np.add.at(n, t[:, k], fn)
    return n / (np.linalg.norm(n, axis=1, keepdims=True) + 1e-12)


def _expression_components(f: _Fields, rng: np.random.Generator) -> list[np.ndarray]:
    p, u, v, au, sgn, face = f.p, f.u, f.v, f.au, f.sgn, f.face
    corner = _g(au - MOUTH_HALF_W, v - MOUTH_Y, 1.1, 0.9) * face
    cheek = _g(au - 3.8, v + 3.5, 1.6, 1.4) * face
    upper = (v > MOUTH_Y) * _g(u, v - MOUTH_Y, 2.8, 1.2) * face
    # The jaw opens below the lip seam; the weight fades towards the corners so the opening is a lens.
    lower = (v < MOUTH_Y) * np.clip(1.0 - (au / 3.2) ** 2, 0.0, 1.0) ** 0.7 * _smoothstep(-14.0, -11.0, v)
    lower = np.maximum(lower, (v < MOUTH_Y) * _smoothstep(-4.0, -1.0, -au) * _smoothstep(-13.5, -10.5, v))
    lower *= ~f.is_ear
    jaw_rot = lower * np.clip(1.0 - np.clip(-p[:, 2], 0.0, None) / 4.0, 0.0, 1.0)
    brow = _g(au - 3.0, v - 1.9, 2.2, 0.9) * face
    inner_brow = _g(au - 1.5, v - 1.7, 1.0, 0.8) * face
    lower_lid = _g(au - EYE_X, v + 0.6, 1.2, 0.5) * face
    comps = [
        f.vec(dx=0.35 * sgn * corner, dy=0.40 * corner + 0.25 * cheek, dz=-0.15 * corner + 0.12 * cheek),  # 0 smile
        f.vec(dy=-1.10 * jaw_rot, dz=-0.35 * jaw_rot),  # 1 jaw open
        f.vec(dy=0.45 * brow + 0.10 * _g(u, v - 4.0, 4.0, 2.0) * face),  # 2 brow raise
        f.vec(dx=-0.18 * sgn * inner_brow, dy=-0.28 * inner_brow, dz=0.05 * inner_brow),  # 3 brow lower/frown
        f.vec(dy=-0.06 * (u < 0) * _g(au - EYE_X, v - 0.7, 1.3, 0.5) * face),  # 4 close eye (image left)
        f.vec(dy=-0.06 * (u > 0) * _g(au - EYE_X, v - 0.7, 1.3, 0.5) * face),  # 5 close eye (image right)
        f.vec(dy=-0.06 * _g(au - EYE_X, v - 0.7, 1.3, 0.5) * face),  # 6 blink
        f.vec(dx=-0.30 * sgn * corner, dz=0.30 * _g(u, v - MOUTH_Y, 1.8, 0.9) * face),  # 7 pucker
        f.vec(dz=-0.15 * _g(u, v - MOUTH_Y, 2.0, 0.9) * face),  # 8 lip press
        f.vec(dx=0.35 * (u < 0) * -1 * corner, dy=0.4 * (u < 0) * corner),  # 9 half smile (image left)
        f.vec(dx=0.35 * (u > 0) * corner, dy=0.4 * (u > 0) * corner),  # 10 half smile (image right)
        f.vec(dx=0.35 * lower),  # 11 jaw sideways
        f.vec(dz=0.35 * cheek + 0.2 * _g(au - 3.2, v - MOUTH_Y, 1.2, 1.3) * face),  # 12 cheek puff
        f.vec(dy=0.22 * upper * _g(au - 1.0, v + 5.5, 1.5, 1.0) + 0.12 * _g(au - 1.3, v + 3.6, 0.8, 0.8) * face),  # 13 upper-lip raise
        f.vec(dx=0.30 * sgn * corner, dy=-0.12 * corner),  # 14 lip stretch
        f.vec(dy=-0.18 * (v < MOUTH_Y) * _g(u, v - MOUTH_Y + 0.6, 1.8, 0.6) * face),  # 15 lower-lip depress
        f.vec(dy=0.2 * _chin_w(u, v, face), dz=0.1 * _chin_w(u, v, face)),  # 16 chin raise
        f.vec(dy=0.12 * lower_lid + 0.1 * cheek),  # 17 squint
        f.vec(dy=0.30 * inner_brow),  # 18 inner brow raise
        f.vec(dy=-0.35 * corner),  # 19 lip corner depress
        f.vec(dz=0.2 * _g(u, v - MOUTH_Y, 2.3, 0.5) * face),  # 20 lip funnel
        f.vec(dy=0.2 * (v > MOUTH_Y) * _g(u, v - MOUTH_Y, 1.6, 0.7) * face),  # 21 upper lip up (mouth slightly open)
    ]
    regions = [(MOUTH_HALF_W, MOUTH_Y, 1.0), (3.5, 1.8, 1.2), (3.8, -3.5, 1.4), (0.0, MOUTH_Y, 1.2), (1.5, -4.0, 0.8)]
    while len(comps) < N_EXPR:
        cu, cv, s = regions[rng.integers(len(regions))]
        cu += rng.normal(0, 0.5)
        cv += rng.normal(0, 0.5)
        w = _g(au - abs(cu), v - cv, s, s) * face
        if rng.random() < 0.3:
            w = w * (sgn == rng.choice([-1, 1]))
        d = rng.normal(0.0, 0.08, 3)
        comps.append(f.vec(dx=d[0] * sgn * w, dy=d[1] * w, dz=d[2] * w))
    return comps[:N_EXPR]


def _chin_w(u, v, face):
    return _g(u, v - (CHIN_Y + 2.0), 2.0, 1.5) * face


def _albedo_fields(f: _Fields, rng: np.random.Generator) -> list[np.ndarray]:
    """Smooth random relative colour fields: luminance blotches, redness, yellowness."""
    u, v, p = f.u, f.v, f.p
    fields = []
    for k in range(N_ALBEDO - N_APPEARANCE):
        field = np.zeros_like(p)
        lum = np.zeros(len(p))
        for _ in range(3):
            cu, cv = rng.uniform(-5.5, 5.5), rng.uniform(-11.0, 5.0)
            s = rng.uniform(0.8, 2.2)
            lum += rng.normal(0.0, 0.035) * _g(u - cu, v - cv, s, s)
        # Most fields change brightness, some change hue (red-green or yellow-blue).
        chroma = rng.normal(0.0, 1.0, 3) * np.array([0.25, 0.12, 0.25]) if k % 3 else np.zeros(3)
        field[:] = lum[:, None] * (1.0 + chroma[None, :])
        fields.append(field)
    return fields


def build_basis(mesh: Mesh) -> Basis:
    rng = np.random.Generator(np.random.PCG64(20211011))
    f = _Fields(mesh)
    flat = lambda comps: np.ascontiguousarray(np.stack([c.reshape(-1) for c in comps]).astype(np.float32))
    u, v, au, face = f.u, f.v, f.au, f.face
    # Where facial hair can grow: below the cheeks, the sideburns in front of the ears, down to the
    # neck below the jaw; the lips stay clear.
    lower = _smoothstep(-3.6, -4.6, v) * np.clip(1.0 - (au / 6.6) ** 4, 0, 1)
    sideburn = _smoothstep(4.9, 5.8, au) * _smoothstep(0.8, -0.2, v)
    beard = np.maximum(lower, sideburn) * (face > 0.15) * _smoothstep(-14.8, -13.4, v)
    beard *= 1.0 - _g(u, v - (MOUTH_Y - 0.1), 2.4, 0.5)
    return Basis(
        shape=flat(_shape_components(f, rng)),
        expr=flat(_expression_components(f, rng)),
        albedo=flat(_albedo_fields(f, rng)),
        beard=beard.astype(np.float32),
        blush=(_g(au - 4.0, v + 3.0, 1.4, 1.3) * face).astype(np.float32),
        eye_area=(_g(au - EYE_X, v + 0.3, 1.6, 0.9) * face).astype(np.float32),
        nose=(_g(u, v - NOSE_TIP_Y - 0.2, 1.0, 1.0) * face).astype(np.float32),
        cavity=_cavity(mesh, f).astype(np.float32),
    )


def _cavity(mesh: Mesh, f: _Fields) -> np.ndarray:
    """Ambient occlusion from the relief: how far a point lies below its blurred surroundings.

    SH lighting has no shadows, so creases (eye sockets, under the nose and lower lip, nasolabial
    folds, mouth corners, under the jaw) would otherwise look flat; this darkens them statically.
    """
    from .mesh import face_relief

    step = 0.1
    gu, gv = np.meshgrid(np.arange(-8.0, 8.0, step), np.arange(-14.0, 8.0, step))
    d = face_relief(gu, gv)
    sigma = int(0.9 / step)
    k = np.exp(-0.5 * (np.arange(-3 * sigma, 3 * sigma + 1) / sigma) ** 2)
    k /= k.sum()
    blur = np.apply_along_axis(lambda r: np.convolve(r, k, mode="same"), 1, d)
    blur = np.apply_along_axis(lambda c: np.convolve(c, k, mode="same"), 0, blur)
    cav = np.clip(blur - d, 0.0, None)
    iu = np.clip(((f.u + 8.0) / step).astype(int), 0, gu.shape[1] - 1)
    iv = np.clip(((f.v + 14.0) / step).astype(int), 0, gu.shape[0] - 1)
    ao = 1.0 - np.clip(1.1 * cav[iv, iu], 0.0, 0.55) * f.face
    # Under the jaw the neck is in the head's shadow.
    neck = _smoothstep(CHIN_Y + 0.3, CHIN_Y - 1.5, f.v) * np.clip(mesh.front + 0.3, 0.0, 1.0) * ~f.is_ear
    return ao * (1.0 - 0.45 * neck)
