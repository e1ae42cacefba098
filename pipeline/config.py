"""What a build makes: the BuildConfig, YAML recipes, and validation into one-line errors.

A BuildConfig holds exactly the settings that decide the bytes of the dataset (counts, seed,
generator and its options, image format, shard size, sampling). How the build runs (workers,
GPUs, cluster address, output location) is not part of it, so the same config gives the same
shards on a laptop or a cluster, and a resumed build can tell whether an output matches.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from synthface.errors import SynthError
from synthface.generator.sampler import SamplingConfig
from synthface.options import normalise_size, reject_unknown

from . import schema

# Keys a recipe may carry that document it but do not change the data.
DOC_KEYS = ("description",)
MAX_SAMPLES = 10**9
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


def _int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise SynthError(f"{name} must be a whole number, got {value!r}")
    try:
        number = float(value) if isinstance(value, str) and "e" in value.lower() else value
        out = int(number)
        if out != float(number):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise SynthError(f"{name} must be a whole number, got {value!r}") from None
    if out < low or (high is not None and out > high):
        limit = f"at least {low}" if high is None else f"between {low} and {high}"
        raise SynthError(f"{name} must be {limit}, got {out}")
    return out


@dataclass(frozen=True)
class BuildConfig:
    """Everything the dataset's bytes depend on; validated on construction."""

    ids: int
    per_id: int
    seed: int = 0
    generator: str = "morphable"
    generator_options: dict[str, Any] = field(default_factory=dict)
    image_size: tuple[int, int] = (112, 112)
    format: str = "jpg"
    quality: int = 95
    shard_size: int = 1000
    prefix: str = schema.DEFAULT_PREFIX
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("ids", _int("ids (number of identities)", self.ids, 1))
        set_("per_id", _int("per-id (images per identity)", self.per_id, 1))
        if self.ids * self.per_id > MAX_SAMPLES:
            raise SynthError(f"ids x per-id = {self.ids * self.per_id} images is more than {MAX_SAMPLES}")
        set_("seed", _int("seed", self.seed, 0, 2**63 - 1))
        if not isinstance(self.generator, str) or not self.generator.strip():
            raise SynthError(f"generator must be a name or module:Class path, got {self.generator!r}")
        if self.generator_options is None:
            set_("generator_options", {})
        if not isinstance(self.generator_options, dict):
            raise SynthError(f"generator_options must be a mapping of option: value, got {self.generator_options!r}")
        set_("generator_options", dict(self.generator_options))
        set_("image_size", normalise_size(self.image_size))
        fmt = str(self.format).lower().lstrip(".")
        fmt = "jpg" if fmt == "jpeg" else fmt
        if fmt not in schema.IMAGE_FORMATS:
            raise SynthError(f"unknown image format {self.format!r}: use one of {', '.join(schema.IMAGE_FORMATS)}")
        set_("format", fmt)
        set_("quality", _int("quality", self.quality, 1, 100))
        set_("shard_size", _int("shard-size (images per shard)", self.shard_size, 1, 1_000_000))
        if not isinstance(self.prefix, str) or not _PREFIX.match(self.prefix):
            raise SynthError(f"prefix {self.prefix!r} must be letters, digits and underscores, starting with a letter or digit")
        if isinstance(self.sampling, dict):
            set_("sampling", SamplingConfig.from_dict(self.sampling))
        elif not isinstance(self.sampling, SamplingConfig):
            raise SynthError(f"sampling must be a mapping of sampling options, got {self.sampling!r}")
        # Fails here (before any worker starts) on unknown generators and mixup with one identity.
        if self.sampling.mixup is not None and self.ids < 2:
            raise SynthError("identity mixup needs at least 2 identities: add identities or pass --mixup off")

    @property
    def num_samples(self) -> int:
        return self.ids * self.per_id

    @property
    def num_shards(self) -> int:
        return math.ceil(self.num_samples / self.shard_size)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "sampling":
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BuildConfig":
        known = {f.name for f in fields(cls)}
        reject_unknown(set(data) - set(DOC_KEYS), known, "recipe key", "keys")
        missing = [k for k in ("ids", "per_id") if data.get(k) is None]
        if missing:
            flag = missing[0].replace("_", "-")
            raise SynthError(f"the number of {missing[0]} is not set: pass --{flag} or set {missing[0]} in the recipe")
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_(self, **changes: Any) -> "BuildConfig":
        return replace(self, **changes)


def recipe_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("synthface.manifests").iterdir() if p.name.endswith(".yaml"))


def find_recipe(name_or_path: str) -> Path:
    """A recipe file given as a path, or by name from the recipes shipped in ``manifests/``."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if "/" not in name_or_path and "\\" not in name_or_path:
        stem = name_or_path[:-5] if name_or_path.endswith(".yaml") else name_or_path
        shipped = resources.files("synthface.manifests") / f"{stem}.yaml"
        if shipped.is_file():
            return Path(str(shipped))
    raise SynthError(
        f"recipe {name_or_path!r} is neither a file nor a shipped recipe; shipped recipes: {', '.join(recipe_names())}"
    )


def load_recipe(name_or_path: str) -> dict[str, Any]:
    path = find_recipe(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SynthError(f"recipe {str(path)!r} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except OSError as exc:
        raise SynthError(f"cannot read recipe {str(path)!r}: {exc.strerror or exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SynthError(f"recipe {str(path)!r} must be a mapping of key: value, not {type(data).__name__}")
    return data


def resolve(recipe: str | dict[str, Any] | None, overrides: dict[str, Any], sampling_overrides: dict[str, Any],
            generator_options: dict[str, Any] | None = None) -> BuildConfig:
    """Recipe values (a recipe name or path, or an already-loaded mapping such as a manifest's
    config), then flags on top; ``None`` means "flag not given"."""
    if isinstance(recipe, dict):
        data = dict(recipe)
    else:
        data = load_recipe(recipe) if recipe else {}
    if generator_options:
        base = data.get("generator_options") or {}
        if not isinstance(base, dict):
            raise SynthError(f"recipe key 'generator_options' must be a mapping, got {base!r}")
        data["generator_options"] = {**base, **generator_options}
    sampling = data.get("sampling") or {}
    if not isinstance(sampling, dict):
        raise SynthError(f"recipe key 'sampling' must be a mapping of sampling options, got {sampling!r}")
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    sampling = {**sampling, **{k: v for k, v in sampling_overrides.items() if v is not None}}
    data["sampling"] = SamplingConfig.from_dict(sampling)
    return BuildConfig.from_dict(data)
