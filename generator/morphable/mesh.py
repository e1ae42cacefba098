"""The mean head: a closed-form surface sampled on a grid, plus two ears, in centimetres.

The head is a stack of horizontal cross-sections (a superellipse per height ``y``: half width,
front depth, back depth) with the facial relief (eye sockets, brow ridge, nose, lips, chin,
cheekbones) added as smooth bumps along +z on the front. Building it in code keeps the model free
of third-party face scans and lets every vertex carry the face-plane coordinates ``(u, v)`` in which
the shader draws crisp details (eyes, brows, lips, hairline) independently of mesh resolution: the
texture is attached to the vertices, so identity and expression deformations move it along.

Frame: x to the image right (the subject's left), y up, z towards the camera; origin on the head's
vertical axis at eye level. ``v = 0`` is eye level, ``u = 0`` the midline.

Mean proportions follow adult anthropometry (Farkas, *Anthropometry of the Head and Face*, 1994;
means over sexes, rounded): interpupillary distance 6.3 cm, mouth width 5.2 cm, nose width 3.4 cm,
nasion-menton 12.3 cm, head breadth 15 cm, head length 19.5 cm, vertex-menton 23 cm, ear length 6 cm.
The eye-mouth to eye-eye ratio (1.16) matches the ArcFace alignment template.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Feature positions in face-plane coordinates (cm).
EYE_X, EYE_Y = 3.15, 0.0
NOSE_TIP_Y = -3.4
MOUTH_Y, MOUTH_HALF_W = -7.0, 2.6
MOUTH_GAP = 0.035  # half-height of the lip seam band (two vertex rows bracket it)
CHIN_Y = -11.5
TOP_Y = 11.8

# Tessellation: N_COLS columns around the head (dense on the face), N_FACE_ROWS rows from the chin
# to the forehead (0.54 cm apart, ~3 pixels at 112x112), plus the two rows that bracket the lip seam.
# Everything a face shows at pixel scale (eyes, brows, lips, hairline, skin texture) is drawn per
# pixel in (u, v), so the mesh carries only the smooth shape and lighting. Version 6 went from 52 x 38
# (5,832 triangles) to 44 x 30 (4,264): bench/quality.py's detector and recogniser measure no
# difference (3,000 images: detection 91.0 -> 91.4%, ROC AUC 0.918 -> 0.922), and renders are ~13%
# faster.
N_COLS = 44
N_FACE_ROWS = 30
EAR_ROWS, EAR_COLS = 10, 7

PART_HEAD, PART_EAR = 0, 1


@dataclass
class Mesh:
    verts: np.ndarray  # [N, 3] float64, cm
    tris: np.ndarray  # [T, 3] int32, counter-clockwise seen from outside
    part: np.ndarray  # [T] int8: PART_HEAD (back-face culled) or PART_EAR (two-sided)
    uv: np.ndarray  # [N, 2] face-plane coordinates for the shader
    front: np.ndarray  # [N] cos(theta): 1 on the face, 0 at the ears, -1 at the back
    normal_hint: np.ndarray  # [N, 3] outward direction of the mean surface (hair volume)
    landmarks: np.ndarray  # [5, 4] int32 vertex indices
    landmark_w: np.ndarray  # [5, 4] bilinear weights
    eye_centres: np.ndarray  # [2, 3] mean eye centres (for local scalings)
    ear_range: tuple[int, int]  # vertex index range of the ears


def _smooth_table(points: list[tuple[float, ...]], ys: np.ndarray, sigma: float = 0.55) -> np.ndarray:
    """Piecewise-linear control points smoothed with a Gaussian: C1-smooth profiles without scipy."""
    pts = np.asarray(points, dtype=np.float64)
    fine = np.arange(pts[0, 0] - 4.0, pts[-1, 0] + 4.0, 0.05)
    cols = [np.interp(fine, pts[:, 0], pts[:, k]) for k in range(1, pts.shape[1])]
    half = int(4 * sigma / 0.05)
    kern = np.exp(-0.5 * (np.arange(-half, half + 1) * 0.05 / sigma) ** 2)
    kern /= kern.sum()
    out = []
    for c in cols:
        padded = np.concatenate([np.full(half, c[0]), c, np.full(half, c[-1])])
        sm = np.convolve(padded, kern, mode="valid")
        out.append(np.interp(ys, fine, sm))
    return np.stack(out, axis=1)


# (y, half width, front depth, back depth, axis z offset, front superellipse exponent)
_PROFILE = [
    (-23.0, 5.3, 4.7, 4.9, -1.6, 2.0),
    (-14.0, 5.2, 4.6, 5.0, -1.5, 2.0),
    (-12.6, 5.3, 4.9, 5.2, -1.3, 2.0),
    (-11.9, 4.6, 6.2, 5.4, -0.6, 1.9),
    (-11.2, 4.5, 7.3, 5.6, 0.0, 1.8),
    (-9.5, 5.3, 7.9, 6.0, 0.0, 1.9),
    (-7.0, 6.2, 8.4, 7.3, 0.0, 2.0),
    (-4.0, 6.9, 8.5, 8.9, 0.0, 2.15),
    (-1.5, 7.3, 8.4, 9.8, 0.0, 2.25),
    (0.5, 7.5, 8.5, 10.2, 0.0, 2.3),
    (2.5, 7.5, 8.8, 10.3, 0.0, 2.35),
    (4.0, 7.4, 8.8, 10.2, 0.0, 2.35),
]
_CAP_Y = 4.0
_CAP_P = 2.6


def _rows() -> np.ndarray:
    neck = [-23.0, -20.0, -17.5, -15.5, -14.0, -13.1, -12.5, -12.1]
    face = list(np.linspace(-11.7, 4.0, N_FACE_ROWS))
    face = [y for y in face if abs(y - MOUTH_Y) > 0.2]
    face += [MOUTH_Y - MOUTH_GAP, MOUTH_Y + MOUTH_GAP]
    cap = list(_CAP_Y + (TOP_Y - _CAP_Y) * np.sin(np.linspace(0, np.pi / 2, 9)[1:]))
    return np.array(sorted(neck + face + cap), dtype=np.float64)


def _columns() -> np.ndarray:
    t = np.linspace(-1.0, 1.0, N_COLS, endpoint=False)
    return np.pi * (0.40 * t + 0.60 * t**3)


def _gauss(dx, dy, sx, sy):
    return np.exp(-0.5 * ((dx / sx) ** 2 + (dy / sy) ** 2))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def face_relief(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Facial relief along +z (cm) at face-plane coordinates: the features on top of the skull."""
    au = np.abs(u)
    d = np.zeros_like(u)
    d -= 1.05 * _gauss(au - 3.1, v + 0.15, 1.55, 1.05)  # eye sockets
    d += 0.60 * _gauss(au - EYE_X, v - 0.05, 0.95, 0.55)  # eyeball and lids
    d += 0.50 * _gauss(au - 2.8, v - 1.75, 2.0, 0.65)  # brow ridge
    d += 0.80 * _gauss(u, v - 0.5, 0.85, 1.2)  # glabella and nose root (sellion)
    # Nose: a ridge growing from the root to the tip, a rounded tip, the alae.
    ramp = np.clip((0.9 - v) / 4.3, 0.0, 1.0) ** 1.15 * _sigmoid((v + 3.55) / 0.28)
    width = 0.55 + 0.25 * np.clip((0.9 - v) / 4.3, 0.0, 1.0)
    d += 1.85 * ramp * np.exp(-0.5 * (u / width) ** 2)
    d += 0.75 * _gauss(u, v - NOSE_TIP_Y, 0.75, 0.6)
    d += 0.75 * _gauss(au - 1.25, v + 3.95, 0.5, 0.45)
    d += 0.30 * _gauss(u, v + 4.4, 0.45, 0.3)  # columella base
    # Mouth: philtrum, lips, the seam, the corners, the labiomental fold, the chin.
    d += 0.55 * _gauss(u, v + 5.6, 1.6, 0.7)
    d += 0.55 * _gauss(u, v - (MOUTH_Y + 0.45), 1.9, 0.4)
    d += 0.50 * _gauss(u, v - (MOUTH_Y - 0.55), 1.7, 0.45)
    d -= 0.35 * _gauss(au - 2.75, v - MOUTH_Y, 0.45, 0.6)
    d -= 0.35 * _gauss(u, v + 8.6, 1.8, 0.5)
    d += 0.65 * _gauss(u, v + 10.0, 1.7, 1.2)
    d += 0.45 * _gauss(au - 4.5, v + 1.9, 1.2, 0.9)  # cheekbones
    d -= 0.20 * _gauss(au - 2.7, v + 5.0, 0.5, 1.4)  # nasolabial folds
    d -= 0.30 * _gauss(au - 6.1, v - 1.5, 0.9, 1.4)  # temples
    return d


def _head(rows: np.ndarray, cols: np.ndarray):
    prof = _smooth_table(_PROFILE, np.minimum(rows, _CAP_Y))
    a, f, b, zc, n = (prof[:, k][:, None] for k in range(5))
    # Skull cap: an ellipsoid above the forehead.
    t = np.clip((rows - _CAP_Y + 2.0) / (TOP_Y - _CAP_Y + 2.0), 0.0, 1.0)
    # A superellipse (exponent _CAP_P > 2): a cranium as broad at the top as real ones, not an egg.
    cap = np.where(rows > _CAP_Y - 2.0, np.clip(1.0 - t**_CAP_P, 0.0, 1.0) ** (1.0 / _CAP_P), 1.0)[:, None]
    cap0 = (1.0 - (2.0 / (TOP_Y - _CAP_Y + 2.0)) ** _CAP_P) ** (1.0 / _CAP_P)
    cap = np.minimum(cap / cap0, 1.0)
    s, c = np.sin(cols)[None, :], np.cos(cols)[None, :]
    expo = np.where(c > 0, 2.0 / n, 2.0 / 2.3)
    x = a * cap * np.sign(s) * np.abs(s) ** expo
    depth = np.where(c > 0, f, b) * cap
    z = depth * np.sign(c) * np.abs(c) ** expo + zc
    y = np.broadcast_to(rows[:, None], x.shape).copy()
    u = x.copy()
    frontness = np.clip(c, 0.0, 1.0) ** 0.7 * np.ones_like(x)
    # Features live on the face (above the under-chin, below the hairline).
    gate = _sigmoid((y + 11.6) / 0.35) * _sigmoid((7.0 - y) / 0.8)
    z = z + face_relief(u, y) * frontness * gate
    verts = np.stack([x, y, z], axis=-1)
    return verts, u, np.broadcast_to(c, x.shape).copy()


def _grid_tris(nr: int, nc: int, offset: int, wrap: bool) -> np.ndarray:
    tris = []
    cmax = nc if wrap else nc - 1
    for r in range(nr - 1):
        for k in range(cmax):
            k1 = (k + 1) % nc
            a, b = offset + r * nc + k, offset + r * nc + k1
            c, d = offset + (r + 1) * nc + k, offset + (r + 1) * nc + k1
            tris.append((a, b, d))
            tris.append((a, d, c))
    return np.array(tris, dtype=np.int32)


def _ear(side: float, head_verts: np.ndarray, rows: np.ndarray, cols: np.ndarray):
    """A two-sided shell: an oval with a raised helix rim and a hollow concha, tilted off the skull."""
    p = np.linspace(-1.0, 1.0, EAR_ROWS)  # along the ear's length (up)
    q = np.linspace(0.0, 1.0, EAR_COLS)  # from the attachment backwards
    P, Q = np.meshgrid(p, q, indexing="ij")
    half_len, depth = 3.0, 2.0
    width = depth * np.sqrt(np.clip(1.0 - (P * 0.92) ** 2, 0.05, 1.0)) * (1.0 + 0.15 * P)
    along = Q * width  # backwards from the attachment line
    radial = np.sqrt(P**2 + Q**2)
    rim = 0.28 * np.exp(-0.5 * ((Q - 0.92) / 0.12) ** 2)
    concha = -0.35 * np.exp(-0.5 * (((P + 0.15) / 0.4) ** 2 + ((Q - 0.35) / 0.3) ** 2))
    bulge = rim + concha + 0.15 * (1.0 - radial)
    centre_y, attach_z = -1.9, -0.9
    ey = centre_y + half_len * P
    # Attach at the skull's side surface at that height.
    row_idx = np.clip(np.searchsorted(rows, ey), 1, len(rows) - 1)
    side_col = int(np.argmin(np.abs(cols - side * np.pi / 2)))
    skull_x = np.abs(head_verts[row_idx, side_col, 0])
    angle = np.radians(22.0)  # the back edge stands off the head
    ex = side * (skull_x - 0.35 + along * np.sin(angle) + bulge * np.cos(angle))
    ez = attach_z - along * np.cos(angle) + bulge * np.sin(angle) * 0.3
    verts = np.stack([ex, ey, ez], axis=-1).reshape(-1, 3)
    return verts


def _bilinear(rows, cols_x, u0, v0):
    """Indices and weights of the 4 grid vertices around face-plane point (u0, v0) on the front."""
    r = int(np.searchsorted(rows, v0)) - 1
    t = (v0 - rows[r]) / (rows[r + 1] - rows[r])
    out_i, out_w = [], []
    for rr, wr in ((r, 1.0 - t), (r + 1, t)):
        xs = cols_x[rr]
        front = np.arange(len(xs) - 1)
        k = int(front[(xs[:-1] <= u0) & (xs[1:] > u0)][0])
        s = (u0 - xs[k]) / (xs[k + 1] - xs[k])
        out_i += [(rr, k), (rr, k + 1)]
        out_w += [wr * (1.0 - s), wr * s]
    return out_i, out_w


def build_mesh() -> Mesh:
    rows, cols = _rows(), _columns()
    grid, u, c = _head(rows, cols)
    nr, nc = grid.shape[:2]
    head = grid.reshape(-1, 3)
    tris = [_grid_tris(nr, nc, 0, wrap=True)]
    parts = [np.full(len(tris[0]), PART_HEAD, np.int8)]
    uv = [np.stack([u.reshape(-1), np.repeat(rows, nc)], axis=1)]
    front = [c.reshape(-1)]
    verts = [head]
    n = len(head)
    ear_start = n
    for side in (-1.0, 1.0):
        ev = _ear(side, grid, rows, cols)
        verts.append(ev)
        tris.append(_grid_tris(EAR_ROWS, EAR_COLS, n, wrap=False))
        parts.append(np.full(len(tris[-1]), PART_EAR, np.int8))
        # Ears sit outside every facial feature; v keeps hair length working over them.
        uv.append(np.stack([np.full(len(ev), side * 9.0), ev[:, 1]], axis=1))
        front.append(np.full(len(ev), -0.05))
        n += len(ev)
    verts = np.concatenate(verts)
    # Outward hint: radial from the vertical axis, tilted up on the cap.
    hint = verts.copy()
    hint[:, 1] = np.clip(verts[:, 1] - 1.0, 0.0, None) * 0.8
    hint /= np.linalg.norm(hint, axis=1, keepdims=True) + 1e-9
    # Landmarks: eye centres, nose tip, mouth corners (subject's right eye first: image left).
    lm_uv = [(-EYE_X, EYE_Y), (EYE_X, EYE_Y), (0.0, NOSE_TIP_Y), (-MOUTH_HALF_W, MOUTH_Y), (MOUTH_HALF_W, MOUTH_Y)]
    lm_i = np.zeros((5, 4), np.int32)
    lm_w = np.zeros((5, 4), np.float64)
    for j, (u0, v0) in enumerate(lm_uv):
        idx, w = _bilinear(rows, u, u0, v0 if v0 != MOUTH_Y else MOUTH_Y + MOUTH_GAP * 0.999)
        lm_i[j] = [r * nc + k for r, k in idx]
        lm_w[j] = w
    eyes = np.array([(lm_w[j][:, None] * verts[lm_i[j]]).sum(0) for j in (0, 1)])
    return Mesh(
        verts=verts,
        tris=np.concatenate(tris),
        part=np.concatenate(parts),
        uv=np.concatenate(uv),
        front=np.concatenate(front),
        normal_hint=hint,
        landmarks=lm_i,
        landmark_w=lm_w,
        eye_centres=eyes,
        ear_range=(ear_start, n),
    )
