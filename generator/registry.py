"""Generator backends by name.

A backend renders a batch of coefficient records (see ``layout``) into aligned uint8 images, the
five alignment landmarks in output pixels, and per-sample metadata. Built-in backends are listed
here by import path, so importing the registry stays cheap; third parties subclass
``synthface.generator.registry.Backend`` and register theirs under the ``synthface.generators``
entry-point group::

    [project.entry-points."synthface.generators"]
    mybackend = "mypackage.module:MyBackend"
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, ClassVar

import numpy as np

from synthface.errors import SynthError
from synthface.options import normalise_size

from .sampler import GaussianPrior, Sampler, SamplingConfig

ENTRY_POINT_GROUP = "synthface.generators"

BUILTIN: dict[str, str] = {
    "morphable": "synthface.generator.morphable:MorphableBackend",
    "discofacegan": "synthface.generator.discofacegan:DiscoFaceGANBackend",
}


@dataclass
class RenderResult:
    images: np.ndarray  # [B, H, W, 3] uint8, aligned to the ArcFace template scaled to H x W
    landmarks: np.ndarray  # [B, 5, 2] float32, (x, y) pixels: eyes, nose tip, mouth corners
    meta: list[dict[str, Any]] = field(default_factory=list)  # per sample, JSON-serialisable


class Backend:
    """Base class of generator backends.

    Subclasses set ``name`` and ``version`` (the version goes into every sample's metadata and the
    manifest, so bump it whenever the same record would render differently), accept
    ``image_size`` and ``device`` plus their own keyword options, and implement ``render``.
    ``render`` must give the same pixels for a record whether it is rendered alone or in a batch.
    """

    name: ClassVar[str] = "base"
    version: ClassVar[str] = "0"
    # Which options a recipe's ``generator_options`` may set, with their defaults.
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, image_size: int | tuple[int, int] = 112, device: str = "cpu", **options: Any):
        self.image_size = normalise_size(image_size)
        self.device = device
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise SynthError(
                f"generator {self.name!r} has no option {unknown[0]!r}; "
                f"its options are: {', '.join(sorted(self.options)) or 'none'}"
            )
        self.opts = {**self.options, **options}

    @classmethod
    def prior(cls, cfg: SamplingConfig, **options: Any) -> GaussianPrior:
        """The distribution records are drawn from for this backend (override to decode latents)."""
        return GaussianPrior(cfg)

    def render(self, coeffs: np.ndarray) -> RenderResult:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "image_size": list(self.image_size), "options": self.opts}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # Python < 3.10 API
        eps = metadata.entry_points().get(ENTRY_POINT_GROUP, [])
    return {ep.name: ep for ep in eps}


def available() -> list[str]:
    return sorted(set(BUILTIN) | set(_entry_points()))


def _from_path(path: str) -> type[Backend]:
    """A backend given as ``package.module:ClassName`` (third parties without entry points, tests)."""
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise SynthError(f"generator path {path!r} must look like package.module:ClassName")
    try:
        obj = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise SynthError(f"generator {path!r}: cannot import module {exc.name!r}") from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise SynthError(f"generator {path!r}: module {module!r} has no {attr!r}")
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        raise SynthError(f"generator {path!r} is not a synthface.generator.registry.Backend subclass")
    return obj


def get(name: str) -> type[Backend]:
    """The backend class registered as ``name``, or given as an import path ``module:Class``."""
    if ":" in name:
        return _from_path(name)
    if name in BUILTIN:
        module, attr = BUILTIN[name].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == module or module.startswith(exc.name + ".")):
                raise SynthError(f"generator {name!r} is not part of this installation") from None
            raise
    eps = _entry_points()
    if name in eps:
        return eps[name].load()
    raise SynthError(
        f"unknown generator {name!r}: available generators are {', '.join(available())} (or give module:Class)"
    )


def create(name: str, image_size: Any = 112, device: str = "cpu", **options: Any) -> Backend:
    return get(name)(image_size=image_size, device=device, **options)


def create_with_sampler(name: str, sampling: SamplingConfig, num_classes: int, seed: int, *, image_size: Any = 112,
                        device: str = "cpu", options: dict[str, Any] | None = None) -> tuple[Backend, Sampler]:
    """The backend ``name`` made with ``options``, and a Sampler over its prior (made with the same options).

    What a build worker, ``synth preview`` and ``synth pairs`` each draw and render with.
    """
    options = dict(options or {})
    backend = create(name, image_size=image_size, device=device, **options)
    prior = type(backend).prior(sampling, **options)
    return backend, Sampler(sampling, num_classes, seed, prior=prior)
