"""``manifest.json``: what a build is (config, generator, versions) and which shards are done.

The driver rewrites it atomically as shards finish, so it is also the resume journal: a shard
listed here whose file has the listed sha256 is never rendered again. It holds no timestamps or
host names (those go to the per-shard stats files), so an interrupted and resumed build ends with
the same manifest as an uninterrupted one.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import orjson

from synthface.errors import SynthError

from . import schema
from .config import BuildConfig
from .storage import Storage

PACKAGES = ("synthface", "numpy", "numba", "torch", "pillow", "simplejpeg", "webdataset", "ray", "pyarrow")


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def identity(cfg: BuildConfig, generator: dict[str, Any]) -> dict[str, Any]:
    """The part of a manifest that must match for a build to resume into an existing output."""
    return {"schema": schema.SCHEMA_VERSION, "config": cfg.to_dict(),
            "generator": {"name": generator["name"], "version": generator["version"]}}


def make(cfg: BuildConfig, generator: dict[str, Any], shards: dict[int, dict[str, Any]], complete: bool) -> dict[str, Any]:
    return {
        **identity(cfg, generator),
        "versions": package_versions(),
        "num_classes": cfg.ids,
        "num_samples": cfg.num_samples,
        "num_shards": cfg.num_shards,
        "pattern": schema.shard_pattern(cfg.prefix, cfg.num_shards),
        "image_format": cfg.format,
        "index": schema.INDEX_NAME,
        "complete": bool(complete),
        "shards": [
            {"index": i, "name": s["name"], "count": s["count"], "sha256": s["sha256"], "bytes": s["bytes"]}
            for i, s in sorted(shards.items())
        ],
    }


def write(storage: Storage, manifest: dict[str, Any]) -> None:
    storage.write(schema.MANIFEST_NAME, orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def read(storage: Storage, remedy: str = "pass --overwrite to replace this output, or choose another --out",
         ) -> dict[str, Any] | None:
    """The manifest at ``storage``, or None where there is none; ``remedy`` ends the error for a bad one."""
    try:
        data = storage.read(schema.MANIFEST_NAME)
    except FileNotFoundError:
        return None
    try:
        manifest = orjson.loads(data)
        if not isinstance(manifest, dict) or "config" not in manifest or "shards" not in manifest:
            raise ValueError("missing config or shards")
    except ValueError as exc:
        raise SynthError(f"{storage.path(schema.MANIFEST_NAME)} is not a synthface manifest ({exc}): {remedy}") from None
    return manifest


def differences(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """Human-readable differences between two identity dicts, e.g. ``config.ids: 10 -> 20``."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        here = f"{path}.{key}" if path else key
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, here)
        elif a != b:
            out.append(f"{here}: {a!r} -> {b!r}")
    return out
