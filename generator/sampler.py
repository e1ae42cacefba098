"""Coefficient sampling and identity mixup: (config, seed, class, image) -> one coefficient record.

Every random draw comes from a generator keyed by the numbers that identify it, never from a
shared stream, so a record does not depend on which worker, shard or batch asks for it:

* the identity code of class ``c`` comes from ``(seed, IDENTITY, c)``: a class has one face
  wherever it is drawn;
* the per-class constants of the factor modes come from ``(seed, CLASS, c)``;
* everything per image (expression, pose, lighting, noise, the mixup partner and ratio) comes
  from ``(seed, IMAGE, c, k)``.

Factor modes follow the reference's factor study: ``all`` draws expression, pose, lighting and
noise fresh for every image; ``expression``, ``lighting`` and ``pose`` vary only that factor and
fix the others per identity; ``none`` fixes all of them per identity, so only identity mixup
varies within a class (the reference's mode 0). Mixup partners are drawn uniformly with
replacement (the reference samples them without replacement per identity; with thousands of
identities the difference is negligible, and per-image keyed draws keep records independent).

Defaults, and why:

* pose: truncated normal, yaw within +-40 deg (sigma 20), pitch within +-20 deg (sigma 10), roll
  within +-12 deg (sigma 6). Web face datasets (CASIA-WebFace, the paper's reference) are mostly
  near-frontal with a long tail to ~45 deg yaw; a recogniser also needs to see some profile-ish
  views, but >60 deg hides half the identity cues of a 112x112 aligned crop.
* expression strength 1.0: the standardised expression space as the model defines it.
* lighting variety 1.0: the lighting of real photographs, as the paper's generator renders it
  (``LIGHT_MEAN``: mostly from above and in front, fitted to DiscoFaceGAN's lighting decoder), with a
  random colour temperature; the variety scales it (0 gives a flat white ambient).
* identity mixup on, with the paper's best schedule: phi uniform over linspace(0.6, 1.0, 11)
  (90.95 vs 88.75 without mixup on 5K_50 in the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from operator import mul
from typing import Any, Iterable, Sequence

import numpy as np

from synthface.errors import SynthError
from synthface.options import reject_unknown
from synthface.schedule import OFF_NAMES, ScheduleKind, linspace

from . import layout

FACTOR_MODES = ("all", "expression", "lighting", "pose", "none")
POSE_DISTRIBUTIONS = ("normal", "uniform")
DEFAULT_MIXUP = linspace(0.6, 1.0, 11)

# Stream tags keep the three kinds of draws independent even for equal (class, image) numbers.
IDENTITY_STREAM, CLASS_STREAM, IMAGE_STREAM = 1, 2, 3
_IDENTITY, _CLASS, _IMAGE = IDENTITY_STREAM, CLASS_STREAM, IMAGE_STREAM


MIXUP = ScheduleKind(
    name="mixup schedule",
    ratio="mixup ratio",
    meaning="phi is the weight of the image's own identity",
    example="0.6:1.0:11",
    presets={**dict.fromkeys(OFF_NAMES), **dict.fromkeys(("paper", "default", "on", "true"), DEFAULT_MIXUP),
             "reference": linspace(0.0, 1.0, 21)},
)


def parse_mixup(value: Any) -> tuple[float, ...] | None:
    """Identity-mixup schedule from a recipe or flag value.

    Accepts ``off``/``none``/``false`` (no mixup), a list of ratios, a comma-separated string of
    ratios, ``paper`` (the default), ``reference`` (the reference code's 0, 0.05, ..., 1.0), or a
    mapping ``{low, high, steps}`` (also written ``LOW:HIGH:STEPS``).
    """
    return MIXUP.parse(value)


def _range(name: str, value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise SynthError(f"{name} must be two numbers [low, high] in degrees, got {value!r}") from None
    if not (lo <= hi) or not (-90.0 <= lo and hi <= 90.0):
        raise SynthError(f"{name} [{lo}, {hi}] must satisfy -90 <= low <= high <= 90 (degrees)")
    return (lo, hi)


@dataclass(frozen=True)
class SamplingConfig:
    """How coefficient records are drawn. Frozen, validated, and serialisable into a manifest."""

    factors: str = "all"
    mixup: tuple[float, ...] | None = DEFAULT_MIXUP
    yaw_range: tuple[float, float] = (-40.0, 40.0)
    pitch_range: tuple[float, float] = (-20.0, 20.0)
    roll_range: tuple[float, float] = (-12.0, 12.0)
    pose_distribution: str = "normal"
    expression_strength: float = 1.0
    lighting_variety: float = 1.0

    def __post_init__(self):
        if self.factors not in FACTOR_MODES:
            raise SynthError(f"unknown factor mode {self.factors!r}: use one of {', '.join(FACTOR_MODES)}")
        if self.pose_distribution not in POSE_DISTRIBUTIONS:
            raise SynthError(
                f"unknown pose distribution {self.pose_distribution!r}: use one of {', '.join(POSE_DISTRIBUTIONS)}"
            )
        object.__setattr__(self, "mixup", parse_mixup(self.mixup))
        for name in ("yaw_range", "pitch_range", "roll_range"):
            object.__setattr__(self, name, _range(name.replace("_", "-"), getattr(self, name)))
        for name in ("expression_strength", "lighting_variety"):
            try:
                value = float(getattr(self, name))
            except (TypeError, ValueError):
                raise SynthError(f"{name.replace('_', '-')} must be a number, got {getattr(self, name)!r}") from None
            if not (0.0 <= value <= 10.0):
                raise SynthError(f"{name.replace('_', '-')} {value} is outside [0, 10]")
            object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SamplingConfig":
        reject_unknown(data, {f.name for f in fields(cls)}, "sampling option")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        return out

    def with_(self, **changes: Any) -> "SamplingConfig":
        return replace(self, **changes)


_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """splitmix64's finaliser: a bijective, well-mixed hash of a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class _KeyedGenerator:
    """One numpy Generator re-keyed per draw: the state is a hash of the key, nothing else.

    Re-keying costs a few microseconds against ~30 us for a new SeedSequence-seeded Generator,
    which matters at one key per image. The returned Generator is shared: finish with it before
    the next ``at``. The hash of a key's leading (seed, stream) pair is remembered, since every
    draw of a sampler repeats it.
    """

    def __init__(self):
        self._bits = np.random.PCG64(0)
        self._gen = np.random.Generator(self._bits)
        self._prefix: dict[tuple[int, int], int] = {}

    def at(self, *key: int) -> np.random.Generator:
        h = self._prefix.get(key[:2]) if len(key) > 2 else None
        if h is None:
            h = 0x243F6A8885A308D3
            for k in key[:2]:
                h = _mix64(h ^ _mix64(int(k) & _MASK64))
            if len(key) > 2 and len(self._prefix) < 64:
                self._prefix[key[:2]] = h
        for k in key[2:]:
            h = _mix64(h ^ _mix64(int(k) & _MASK64))
        a, b, c = h, _mix64(h ^ 0x13198A2E03707344), _mix64(h ^ 0xA4093822299F31D0)
        self._bits.state = {
            "bit_generator": "PCG64",
            "state": {"state": (a << 64) | b, "inc": (c << 1) | 1},
            "has_uint32": 0,
            "uinteger": 0,
        }
        return self._gen


def generator_for(*key: int) -> np.random.Generator:
    """A fresh Generator in the state the sampler uses for ``key``, e.g. (seed, IDENTITY_STREAM, c).

    For checks that reproduce a draw outside the sampler.
    """
    return _KeyedGenerator().at(*key)


# Lighting of real photographs: the mean and the Cholesky factor of the covariance of the nine SH
# coefficients (Deep3DFaceRecon's basis, averaged over the colour channels, before the renderer's
# +0.8 DC) that DiscoFaceGAN's lighting decoder gives for z ~ N(0, I). That decoder is a VAE trained
# on coefficients fitted to FFHQ photographs, so this is the light the paper's generator renders:
# from above in 96% of draws (coefficient 1 < 0; median elevation 39 deg), mostly frontal, with a
# directional strength of 0.10-0.36 (5th-95th percentile). ``bench/lighting_prior.py`` recomputes the
# table from the decoder's checkpoint (200,000 draws; the decoded values are close to Gaussian).
LIGHT_MEAN = (0.02, -0.134, 0.12, 0.006, 0.006, 0.009, 0.015, 0.003, 0.039)
LIGHT_CHOL = (  # lower triangular, row k has k + 1 entries
    (0.15,),
    (-0.009, 0.078),
    (-0.033, -0.005, 0.083),
    (-0.004, 0.004, 0.0, 0.104),
    (0.001, 0.0, 0.003, -0.009, 0.038),
    (0.005, 0.0, -0.001, -0.001, 0.001, 0.048),
    (0.002, 0.009, -0.038, 0.0, -0.001, 0.025, 0.066),
    (0.001, 0.003, 0.003, -0.004, -0.014, -0.003, 0.003, 0.059),
    (0.016, -0.003, -0.004, 0.0, 0.0, -0.021, -0.035, 0.001, 0.048),
)


class GaussianPrior:
    """The default prior over coefficients, in the standardised units of the layout.

    A backend whose coefficients come from elsewhere (e.g. DiscoFaceGAN's decoders) subclasses
    this and overrides the factor methods; each takes the generator for that draw and returns one
    record's field as float32. They run once per image, so they make few, vectorised draws.
    """

    def __init__(self, cfg: SamplingConfig):
        self.cfg = cfg
        ranges = np.array([cfg.pitch_range, cfg.yaw_range, cfg.roll_range], dtype=np.float64)
        self._lo, self._hi = ranges[:, 0], ranges[:, 1]
        self._centre, self._sigma = ranges.mean(axis=1), (ranges[:, 1] - ranges[:, 0]) / 4.0
        self._lo_f, self._hi_f = self._lo.tolist(), self._hi.tolist()
        self._centre_f, self._sigma_f = self._centre.tolist(), self._sigma.tolist()

    def identity(self, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(layout.IDENTITY_SIZE, dtype=np.float32)

    def expression(self, rng: np.random.Generator) -> np.ndarray:
        # Real expressions are sparse: a few action units at a time, not all 64 a little.
        z = rng.standard_normal(layout.SIZES["expression"], dtype=np.float32)
        active = rng.random(layout.SIZES["expression"], dtype=np.float32) < 0.25
        return z * active * np.float32(self.cfg.expression_strength)

    def pose(self, rng: np.random.Generator) -> np.ndarray:
        """Pitch, yaw, roll: uniform in range, or normal on the range centre with sigma = half-width / 2."""
        # Python floats for three values: numpy's per-call overhead would dominate (same arithmetic).
        lo, hi = self._lo_f, self._hi_f
        if self.cfg.pose_distribution == "uniform":
            deg = [a + (b - a) * u for a, b, u in zip(lo, hi, rng.random(3).tolist())]
        else:
            centre, sigma = self._centre_f, self._sigma_f
            deg = [m + s * z for m, s, z in zip(centre, sigma, rng.standard_normal(3).tolist())]
            for _ in range(16):  # rejection per axis; P(accept) = 0.95, so this loop rarely runs
                out = [not (a <= d <= b) for d, a, b in zip(deg, lo, hi)]
                if not any(out):
                    break
                fresh = [m + s * z for m, s, z in zip(centre, sigma, rng.standard_normal(3).tolist())]
                deg = [f if o else d for d, f, o in zip(deg, fresh, out)]
            deg = [min(max(d, a), b) for d, a, b in zip(deg, lo, hi)]
        return np.array([math.radians(d) for d in deg], dtype=np.float32)

    def lighting(self, rng: np.random.Generator) -> np.ndarray:
        """Light as in real photographs (``LIGHT_MEAN``, ``LIGHT_CHOL``), tinted by a colour temperature."""
        # Scalar arithmetic on a list: this runs once per image, where numpy's per-call overhead dominates.
        v = self.cfg.lighting_variety
        z = rng.standard_normal(13).tolist()
        # One set of nine coefficients for all channels (a light has one colour; independent
        # per-channel terms painted green and magenta patches across faces). Row k of the triangular
        # factor has k + 1 entries, so map() pairs it with z[0..k]; z[9:13] are left for the tint.
        sh = [v * (m + sum(map(mul, row, z))) for m, row in zip(LIGHT_MEAN, LIGHT_CHOL)]
        # Colour temperature (warm/cool) with a little per-channel jitter: a gain on the directional
        # terms and an offset on the ambient one.
        warm = 0.04 * v * z[9]
        tint = (warm + 0.015 * v * z[10], 0.015 * v * z[11], -warm + 0.015 * v * z[12])
        out: list[float] = []
        for ch in range(layout.SH_CHANNELS):
            gain = 1.0 + tint[ch]
            out.append(sh[0] + tint[ch])
            out.extend([b * gain for b in sh[1:]])
        return np.array(out, dtype=np.float32)

    def noise(self, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(layout.SIZES["noise"], dtype=np.float32)


def dominant_class(cls, partner, phi):
    """The hard label of a record: its own class i unless the mixup partner j (>= 0) has the larger
    weight (phi < 0.5). Elementwise on arrays of classes, partners and ratios."""
    return np.where((partner >= 0) & (phi < 0.5), partner, cls)


def soft_label(cls: int, partner: int, phi: float) -> list[list[float]]:
    """[[i, phi], [j, 1 - phi]], or [[i, 1.0]] without a mixup partner (j < 0). Weights sum to 1."""
    if partner < 0:
        return [[cls, 1.0]]
    return [[cls, phi], [partner, round(1.0 - phi, 6)]]


@dataclass
class SampleBatch:
    """Records for a batch of (class, image) pairs, with the identity-mixup bookkeeping."""

    coeffs: np.ndarray  # [B, 286] float32
    cls: np.ndarray  # [B] int64: the image's own class i
    image: np.ndarray  # [B] int64: image index k within class i
    partner: np.ndarray  # [B] int64: mixup partner j, -1 without mixup
    phi: np.ndarray  # [B] float64: weight of class i (1.0 without mixup), exactly a schedule value

    def __len__(self) -> int:
        return len(self.cls)

    def soft_label(self, b: int) -> list[list[float]]:
        """Record b's soft label (``soft_label``)."""
        return soft_label(int(self.cls[b]), int(self.partner[b]), float(self.phi[b]))

    def soft_labels(self) -> list[list[list[float]]]:
        """Every record's soft label, in order."""
        return [soft_label(i, j, phi) for i, j, phi in zip(self.cls.tolist(), self.partner.tolist(), self.phi.tolist())]

    def label(self, b: int) -> int:
        """Record b's dominant class (``dominant_class``)."""
        return int(dominant_class(self.cls[b], self.partner[b], self.phi[b]))

    def labels(self) -> np.ndarray:
        """[B] int64: every record's dominant class."""
        return dominant_class(self.cls, self.partner, self.phi).astype(np.int64)


class Sampler:
    """Draws coefficient records for (class, image) pairs of a dataset of ``num_classes`` identities."""

    def __init__(self, cfg: SamplingConfig, num_classes: int, seed: int, prior: GaussianPrior | None = None):
        if num_classes < 1:
            raise SynthError(f"the number of identities must be at least 1, got {num_classes}")
        if cfg.mixup is not None and num_classes < 2:
            raise SynthError("identity mixup needs at least 2 identities: add identities or pass --mixup off")
        self.cfg = cfg
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.prior = prior or GaussianPrior(cfg)
        self._image_rng, self._class_rng = _KeyedGenerator(), _KeyedGenerator()
        self._ids: dict[int, np.ndarray] = {}
        self._class_consts: dict[int, dict[str, np.ndarray]] = {}

    def identity(self, c: int) -> np.ndarray:
        code = self._ids.get(c)
        if code is None:
            if len(self._ids) > 65536:
                self._ids.clear()
            code = self.prior.identity(self._class_rng.at(self.seed, _IDENTITY, c))
            self._ids[c] = code
        return code

    def _class_constants(self, c: int) -> dict[str, np.ndarray]:
        consts = self._class_consts.get(c)
        if consts is None:
            if len(self._class_consts) > 65536:
                self._class_consts.clear()
            rng = self._class_rng.at(self.seed, _CLASS, c)
            consts = {
                "expression": self.prior.expression(rng),
                "pose": self.prior.pose(rng),
                "lighting": self.prior.lighting(rng),
                "noise": self.prior.noise(rng),
            }
            self._class_consts[c] = consts
        return consts

    def _one(self, c: int, k: int, out: np.ndarray) -> tuple[int, float]:
        rng = self._image_rng.at(self.seed, _IMAGE, c, k)
        # Partner and ratio always consume the same two uniforms, so turning mixup off (or phi = 1)
        # leaves every other draw of the image unchanged.
        u_partner, u_phi = rng.random(2)
        if self.cfg.mixup is not None:
            j = min(int(u_partner * (self.num_classes - 1)), self.num_classes - 2)
            j += j >= c  # uniform over all classes but c
            phi = float(self.cfg.mixup[min(int(u_phi * len(self.cfg.mixup)), len(self.cfg.mixup) - 1)])
        else:
            j, phi = -1, 1.0
        ident = self.identity(c)
        if j >= 0 and phi < 1.0:
            ident = (np.float32(phi) * ident + np.float32(1.0 - phi) * self.identity(j)).astype(np.float32)
        out[layout.IDENTITY] = ident
        fresh = {
            "expression": self.prior.expression(rng),
            "pose": self.prior.pose(rng),
            "lighting": self.prior.lighting(rng),
        }
        fresh["noise"] = self.prior.noise(rng)
        mode = self.cfg.factors
        if mode != "all":
            # As in the reference's factor study: everything but the named factor is fixed per identity.
            fixed = self._class_constants(c)
            fresh = {name: (value if name == mode else fixed[name]) for name, value in fresh.items()}
        for name, value in fresh.items():
            out[layout.SLICES[name]] = value
        return j, phi

    def batch(self, pairs: Iterable[Sequence[int]]) -> SampleBatch:
        pairs = [(int(c), int(k)) for c, k in pairs]
        for c, k in pairs:
            if not (0 <= c < self.num_classes) or k < 0:
                raise SynthError(f"sample (class {c}, image {k}) is outside the dataset of {self.num_classes} identities")
        coeffs = layout.empty(len(pairs))
        partner = np.empty(len(pairs), dtype=np.int64)
        phi = np.empty(len(pairs), dtype=np.float64)
        for b, (c, k) in enumerate(pairs):
            partner[b], phi[b] = self._one(c, k, coeffs[b])
        cls = np.array([c for c, _ in pairs], dtype=np.int64)
        image = np.array([k for _, k in pairs], dtype=np.int64)
        return SampleBatch(coeffs=coeffs, cls=cls, image=image, partner=partner, phi=phi)
