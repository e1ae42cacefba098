"""Training-time augmentation of synthetic faces: the camera and the photographer that renders lack.

A rendered face is perfectly aligned, sharp, noise-free, evenly exposed and stored once at JPEG
quality 95; a web photograph is none of these. A recogniser trained on clean renders learns cues
that real photographs do not carry and fails on the ones they do (DigiFace-1M, Bae et al. 2023,
found aggressive augmentation closes most of the synthetic-to-real gap). Each image gets, each with
its own probability, in the order a camera would apply them:

* a small random similarity warp (scale, rotation, shift): alignment error of a real detector,
  black where the warp leaves the image, as aligners pad;
* optics: Gaussian or motion blur, or down-and-up scaling (low resolution, upscaled);
* colour: brightness, contrast, saturation, white balance; sometimes greyscale;
* sensor noise (Gaussian, colour or luminance);
* JPEG re-compression at a random quality;
* random erasing (a rectangle of flat colour or noise: occluders, overlays).

Everything is drawn from a generator the caller passes (the loader seeds one per reader from the
run's seed), so a run is reproducible under ``--seed``. The pixel work is OpenCV (single-threaded,
SIMD; PIL's filters took 0.3-0.8 ms each on a 112x112 image, OpenCV 5-80 us) and simplejpeg, so one
loader process augments thousands of images per second (``bench/bench_train.py`` measures it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import cv2
import numpy as np
import simplejpeg

from synthface.errors import SynthError

_LUMA = (0.299, 0.587, 0.114)
_NOISE_TILE = 256  # side of the precomputed noise banks that noise is cut from
_NOISE_LEVELS = 8  # noise strengths are quantised to this many banks (int16: one saturating add per image)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (``p_*``, per image) and ranges of each operation."""

    p_warp: float = 0.5
    scale: tuple[float, float] = (0.9, 1.1)  # zoom factor (log-uniform)
    rotate: float = 10.0  # degrees, either way
    shift: float = 0.05  # fraction of the side, either way, per axis
    p_blur: float = 0.25  # Gaussian (sigma 0.4-1.6 px) or motion blur (3-7 px), half each (sizes at 112 px)
    p_downscale: float = 0.2
    downscale: tuple[float, float] = (0.3, 0.8)  # side factor before scaling back up
    p_colour: float = 0.8
    brightness: float = 0.3  # gain in [1 - b, 1 + b]
    contrast: float = 0.3
    saturation: float = 0.4
    white_balance: float = 0.08  # per-channel gain in [1 - w, 1 + w]
    p_grey: float = 0.1
    p_noise: float = 0.25
    noise: tuple[float, float] = (2.0, 10.0)  # standard deviation, in 8-bit levels
    p_jpeg: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 90)
    p_erase: float = 0.2
    erase_area: tuple[float, float] = (0.02, 0.15)  # fraction of the image

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, (tuple, list)) else (value,)
            try:
                values = tuple(float(v) for v in values)
            except (TypeError, ValueError):
                raise SynthError(f"augmentation option {f.name} must be numeric, got {value!r}") from None
            if any(not math.isfinite(v) or v < 0 for v in values):
                raise SynthError(f"augmentation option {f.name} must be finite and not negative, got {value!r}")
            if f.name.startswith("p_") and values[0] > 1:
                raise SynthError(f"augmentation probability {f.name} must be in [0, 1], got {value!r}")
            if isinstance(value, (tuple, list)):
                if len(values) != 2 or values[0] > values[1]:
                    raise SynthError(f"augmentation range {f.name} must be [low, high] with low <= high, got {value!r}")
                object.__setattr__(self, f.name, tuple(int(v) if f.name == "jpeg_quality" else v for v in values))
            else:
                object.__setattr__(self, f.name, values[0])
        if not (0 < self.scale[0]) or not (0 < self.downscale[0] and self.downscale[1] <= 1):
            raise SynthError("augmentation scale and downscale factors must be positive (downscale at most 1)")
        if not (1 <= self.jpeg_quality[0] and self.jpeg_quality[1] <= 100):
            raise SynthError(f"augmentation jpeg_quality {self.jpeg_quality} must lie within [1, 100]")
        if self.erase_area[1] > 1 or self.brightness > 1 or self.contrast > 1 or self.saturation > 1:
            raise SynthError("augmentation erase_area, brightness, contrast and saturation must be at most 1")

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.startswith("p_"))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


DEFAULT = "light"  # what synth train uses unless told otherwise
_OFF = {f.name: 0.0 for f in fields(AugmentConfig) if f.name.startswith("p_")}
PRESETS: dict[str, dict[str, Any]] = {
    # The dataclass defaults: every operation, at moderate rates (3.9 points worse on real faces than
    # none in the 4-epoch CPU recipe, docs/quality.md; for longer training).
    "medium": {},
    "off": _OFF,
    # Camera effects only, no geometry or occluders: the default of synth train (on real faces level
    # with no augmentation in the 4-epoch CPU recipe, docs/quality.md).
    "light": {"p_warp": 0.0, "p_erase": 0.0, "p_blur": 0.15, "p_downscale": 0.1, "p_noise": 0.15, "p_jpeg": 0.25,
              "p_colour": 0.5},
    "strong": {"p_warp": 0.7, "rotate": 15.0, "scale": (0.85, 1.15), "shift": 0.08, "p_blur": 0.4,
               "p_downscale": 0.35, "downscale": (0.25, 0.7), "p_noise": 0.4, "noise": (2.0, 14.0), "p_jpeg": 0.6,
               "jpeg_quality": (20, 85), "p_erase": 0.35, "erase_area": (0.02, 0.25), "p_grey": 0.15},
}


def parse_augment(value: Any) -> AugmentConfig:
    """A preset name (light, medium, strong, off), ``False``/``None`` (off), or a mapping of options,
    optionally with ``preset`` as the starting point (``{preset: strong, p_grey: 0.3}``)."""
    if isinstance(value, AugmentConfig):
        return value
    if value is None or value is False:
        value = "off"
    if value is True or (isinstance(value, str) and value.strip().lower() == "default"):
        value = DEFAULT
    if isinstance(value, str):
        name = value.strip().lower()
        if name not in PRESETS:
            raise SynthError(f"unknown augmentation {value!r}: use one of {', '.join(PRESETS)}, or a mapping of options")
        return AugmentConfig(**PRESETS[name])
    if isinstance(value, dict):
        options = dict(value)
        base = parse_augment(options.pop("preset", DEFAULT))
        known = {f.name for f in fields(AugmentConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise SynthError(f"unknown augmentation option {unknown[0]!r}: known are {', '.join(sorted(known))}")
        return replace(base, **options)
    raise SynthError(f"augmentation {value!r}: give a preset name ({', '.join(PRESETS)}) or a mapping of options")


def _colour_matrix(u: list[float], c: AugmentConfig, mean_rgb: tuple[float, float, float], colour: bool,
                   grey: bool) -> np.ndarray:
    """One affine colour map [3, 4] for white balance, brightness, saturation, contrast and greyscale:
    each is linear in RGB, so together they are one matrix and one offset (one ``cv2.transform``).
    3x3 arithmetic on Python floats: a dozen small numpy calls would cost more than the pixels."""
    luma = _LUMA
    m = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    off = 0.0  # the same offset on every channel
    if colour:
        bright = 1.0 + c.brightness * (2.0 * u[13] - 1.0)
        gains = [bright * (1.0 + c.white_balance * (2.0 * u[16 + k] - 1.0)) for k in range(3)]
        sat = 1.0 + c.saturation * (2.0 * u[15] - 1.0)
        # saturation about each pixel's grey value, after the gains: m = (sat I + (1 - sat) 1 luma^T) diag(gains)
        m = [[(sat * (i == j) + (1.0 - sat) * luma[j]) * gains[j] for j in range(3)] for i in range(3)]
        con = 1.0 + c.contrast * (2.0 * u[14] - 1.0)
        # contrast about the image's mean brightness after the above
        mean = sum(luma[i] * sum(m[i][j] * mean_rgb[j] for j in range(3)) for i in range(3))
        m = [[con * v for v in row] for row in m]
        off = (1.0 - con) * mean
    if grey:
        row = [sum(luma[i] * m[i][j] for i in range(3)) for j in range(3)]
        m = [row, row, row]  # the offset is the same on every channel, so greyscale keeps it
    return np.array([[*m[i], off] for i in range(3)], dtype=np.float32)


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line of ``length`` pixels through the centre at ``angle``, rasterised (bilinear)."""
    size = int(math.ceil(length)) | 1
    k = np.zeros((size, size), dtype=np.float32)
    centre = (size - 1) / 2.0
    for t in np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, 4 * size):
        x, y = centre + t * math.cos(angle), centre - t * math.sin(angle)
        x0, y0 = min(int(x), size - 2) if size > 1 else 0, min(int(y), size - 2) if size > 1 else 0
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1.0 - fy), (1, fy)):
            for dx, wx in ((0, 1.0 - fx), (1, fx)):
                if 0 <= y0 + dy < size and 0 <= x0 + dx < size:
                    k[y0 + dy, x0 + dx] += wy * wx
    return k / k.sum()


class Augmenter:
    """Applies an ``AugmentConfig`` to uint8 HxWx3 images, drawing from the generator it is given."""

    def __init__(self, cfg: AugmentConfig, seed: int = 0):
        self.cfg = cfg
        cv2.setNumThreads(1)  # loader processes are the parallelism; OpenCV's own pool would oversubscribe
        # Noise is cut from fixed banks at a random offset: drawing 37,632 normals per image would cost
        # more than all the other operations together. One bank per strength level, colour and
        # luminance-only, as int16 for a saturating uint8 add.
        bank_rng = np.random.default_rng([int(seed), 4242])
        unit = bank_rng.standard_normal((_NOISE_TILE, _NOISE_TILE, 3), dtype=np.float32)
        mono = np.repeat(unit[..., :1], 3, axis=2)
        levels = np.linspace(cfg.noise[0], cfg.noise[1], _NOISE_LEVELS)
        self._noise = [[np.round(s * bank).astype(np.int16) for s in levels] for bank in (unit, mono)]

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.cfg
        original = image
        u = rng.random(24).tolist()  # every draw of this image, at fixed positions: one call per image
        h, w = image.shape[:2]
        if u[0] < c.p_warp:
            s = math.exp(math.log(c.scale[0]) + (math.log(c.scale[1]) - math.log(c.scale[0])) * u[1])
            # A zoom by s and a turn about the image centre, then a shift; black where it leaves the image.
            m = cv2.getRotationMatrix2D((w / 2.0 - 0.5, h / 2.0 - 0.5), c.rotate * (2.0 * u[2] - 1.0), s)
            m[0, 2] += c.shift * w * (2.0 * u[3] - 1.0)
            m[1, 2] += c.shift * h * (2.0 * u[4] - 1.0)
            image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        px = h / 112.0  # blur sizes are for 112x112 faces; they scale with the image
        if u[5] < c.p_blur:
            if u[6] < 0.5:
                sigma = (0.4 + 1.2 * u[7]) * px
                k = 2 * max(1, int(math.ceil(2.0 * sigma))) + 1
                image = cv2.GaussianBlur(image, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)
            else:
                kernel = _motion_kernel(max(2.0, (3.0 + 4.0 * u[9]) * px), math.pi * u[7])
                image = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
        elif u[8] < c.p_downscale:
            f = c.downscale[0] + (c.downscale[1] - c.downscale[0]) * u[9]
            small = cv2.resize(image, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)
            image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        colour, grey = u[10] < c.p_colour, u[11] < c.p_grey
        if colour or grey:
            mean = cv2.mean(image)[:3] if colour else (0.0, 0.0, 0.0)
            image = cv2.transform(image, _colour_matrix(u, c, mean, colour, grey))  # saturates to uint8
        if u[12] < c.p_noise:
            bank = self._noise[u[22] < 0.5][min(int(u[19] * _NOISE_LEVELS), _NOISE_LEVELS - 1)]
            oy, ox = int(u[20] * (_NOISE_TILE - h)), int(u[21] * (_NOISE_TILE - w))
            image = cv2.add(image, bank[oy:oy + h, ox:ox + w], dtype=cv2.CV_8U)
        r = rng.random(8).tolist() if (c.p_jpeg > 0 or c.p_erase > 0) else None
        if r is not None and r[0] < c.p_jpeg:
            q = int(round(c.jpeg_quality[0] + (c.jpeg_quality[1] - c.jpeg_quality[0]) * r[1]))
            data = simplejpeg.encode_jpeg(np.ascontiguousarray(image), quality=q, colorspace="RGB",
                                          colorsubsampling="420")
            image = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=True)
        if r is not None and r[2] < c.p_erase:
            area = (c.erase_area[0] + (c.erase_area[1] - c.erase_area[0]) * r[3]) * h * w
            aspect = math.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * r[4])
            eh, ew = min(h, max(1, round(math.sqrt(area * aspect)))), min(w, max(1, round(math.sqrt(area / aspect))))
            y0, x0 = int(r[5] * (h - eh + 1)), int(r[6] * (w - ew + 1))
            if image is original or not image.flags.writeable:
                image = image.copy()  # never draw on the caller's array (the real-image cache holds it)
            if r[7] < 0.5:
                image[y0:y0 + eh, x0:x0 + ew] = (rng.random(3) * 255.0).astype(np.uint8)
            else:
                image[y0:y0 + eh, x0:x0 + ew] = (rng.random((eh, ew, 3)) * 255.0).astype(np.uint8)
        return image
