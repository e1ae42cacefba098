"""The coefficient layout shared by every generator: one record of 286 float32 values per image.

It matches DiscoFaceGAN's generator input (lambda) so that a record sampled once can be rendered by
either backend:

    identity 160 = shape 80 + albedo (texture) 80
    expression 64
    pose 3        pitch, yaw, roll in radians (metadata reports degrees)
    lighting 27   second-order spherical harmonics, channel-major: [R0..R8, G0..G8, B0..B8]
    noise 32      nuisance variation (GAN noise inputs; background, camera jitter and gaze for `morphable`)

Conventions every backend follows:

* Shape, albedo and expression values are standardised: N(0, 1) spans typical human variation.
* Pose: the head is rotated by R = Rz(roll) @ Ry(yaw) @ Rx(pitch) in a frame with x to the image
  right, y up and z towards the camera. Positive yaw turns the nose towards the image right,
  positive pitch moves the nose down (looking down), positive roll turns the face anticlockwise
  as seen in the image.
* Lighting uses the SH basis order and constants of Deep3DFaceReconstruction (the 3DMM renderer that
  DiscoFaceGAN was trained with): per channel 9 coefficients for the basis functions
  [1, y, z, x, xy, yz, 3z^2-1, xz, x^2-y^2] (with the sign conventions of that renderer), and the
  renderer adds 0.8 to each channel's constant term, so all-zero lighting is a soft white ambient.
"""

from __future__ import annotations

import numpy as np

FIELDS: tuple[tuple[str, int], ...] = (
    ("shape", 80),
    ("albedo", 80),
    ("expression", 64),
    ("pose", 3),
    ("lighting", 27),
    ("noise", 32),
)

SIZES: dict[str, int] = dict(FIELDS)
TOTAL: int = sum(SIZES.values())  # 286

SLICES: dict[str, slice] = {}
_start = 0
for _name, _size in FIELDS:
    SLICES[_name] = slice(_start, _start + _size)
    _start += _size
del _start, _name, _size

# Identity mixup interpolates this contiguous block (shape and albedo together).
IDENTITY = slice(SLICES["shape"].start, SLICES["albedo"].stop)
IDENTITY_SIZE = IDENTITY.stop - IDENTITY.start  # 160

POSE_NAMES = ("pitch", "yaw", "roll")
SH_DC_OFFSET = 0.8  # added to each channel's constant SH term at render time
SH_CHANNELS, SH_BANDS = 3, 9

DTYPE = np.float32


def empty(batch: int) -> np.ndarray:
    """A zeroed batch of records: neutral face, frontal pose, soft white light."""
    return np.zeros((batch, TOTAL), dtype=DTYPE)


def split(coeffs: np.ndarray) -> dict[str, np.ndarray]:
    """Views of each field of a record or a batch of records (last axis is the layout)."""
    if coeffs.shape[-1] != TOTAL:
        raise ValueError(f"expected {TOTAL} coefficients on the last axis, got {coeffs.shape[-1]}")
    return {name: coeffs[..., sl] for name, sl in SLICES.items()}


def join(**fields: np.ndarray) -> np.ndarray:
    """Assemble records from named fields; missing fields are zero."""
    unknown = set(fields) - set(SIZES)
    if unknown:
        raise ValueError(f"unknown coefficient fields {sorted(unknown)}; known: {list(SIZES)}")
    lead = None
    for name, value in fields.items():
        value = np.asarray(value)
        if value.shape[-1] != SIZES[name]:
            raise ValueError(f"field {name!r} needs {SIZES[name]} values, got {value.shape[-1]}")
        lead = value.shape[:-1] if lead is None else lead
    out = np.zeros((*(lead or ()), TOTAL), dtype=DTYPE)
    for name, value in fields.items():
        out[..., SLICES[name]] = value
    return out


def lighting_matrix(coeffs: np.ndarray) -> np.ndarray:
    """Lighting of a record (or batch) as [..., 3 channels, 9 SH bands], DC offset not yet added."""
    return coeffs[..., SLICES["lighting"]].reshape(*coeffs.shape[:-1], SH_CHANNELS, SH_BANDS)
