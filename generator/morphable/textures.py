"""The detail maps (skin pores, hair strands, curls) and the sensor-noise map, made from a fixed seed.

Module-level constants, not model fields: the per-pixel shader reads them as globals, which numba
compiles in as constant data. Handed in as an argument instead, the array would cost an atomic
reference-count update per pixel (numba inlines the shader at the level of its own IR, where an
array argument is a new reference), about a tenth of the shading time.
"""

from __future__ import annotations

import numpy as np

SIZE = 256  # every map tiles with this period; lookups wrap with ``& 255``
# The detail maps are bytes: they are fetched at scattered (u, v), and 64 KiB each sits in the L2
# cache with room to spare where float32 took 256 KiB; the quantisation is far below one output level.
SKIN_STEP = 1.0 / 64.0  # skin: zero-mean, stored + 128, in steps of SKIN_STEP
HAIR_STEP = 1.0 / 255.0  # hair: [0, 1] in steps of HAIR_STEP


def _filtered_noise(rng, sigma_rows: float, sigma_cols: float, n: int = SIZE) -> np.ndarray:
    """Tileable Gaussian-filtered white noise (filtering in the Fourier domain wraps around)."""
    white = rng.standard_normal((n, n))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    filt = np.exp(-2.0 * np.pi**2 * ((fy * sigma_rows) ** 2 + (fx * sigma_cols) ** 2))
    out = np.real(np.fft.ifft2(np.fft.fft2(white) * filt))
    return out / out.std()


def _build() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(1994))
    skin = 0.6 * _filtered_noise(rng, 0.8, 0.8) + 0.4 * _filtered_noise(rng, 4.0, 4.0)
    hair = np.clip(0.5 + 0.3 * _filtered_noise(rng, 5.0, 0.6), 0.0, 1.0)
    # Sensor noise: unit variance, triangular (the sum of two uniforms), float32.
    noise = (rng.random((SIZE, SIZE)) + rng.random((SIZE, SIZE)) - 1.0).astype(np.float32) * np.float32(2.45)
    # Curly hair: round clumps with bright tops and dark gaps (drawn after the others, so that
    # their values did not change when it was added).
    curls = np.clip(0.5 + 0.25 * np.tanh(1.2 * _filtered_noise(rng, 1.8, 1.8)), 0.0, 1.0)
    detail = np.stack([
        (np.clip(np.rint(skin * 0.5 / SKIN_STEP), -127, 127) + 128).astype(np.uint8),
        np.rint(hair / HAIR_STEP).astype(np.uint8),
        np.rint(curls / HAIR_STEP).astype(np.uint8),
    ])
    # Row-major whatever the numpy version: numpy 1.x hands the FFT's real part back in column order,
    # and numba can neither cache a kernel that reads a non-contiguous global (it recompiled the
    # renderer in every process) nor index it as cheaply.
    return np.ascontiguousarray(detail), np.ascontiguousarray(noise)


DETAIL, SENSOR_NOISE = _build()  # [3, 256, 256] uint8 (skin, hair, curls); [256, 256] float32
DETAIL.flags.writeable = False
SENSOR_NOISE.flags.writeable = False
