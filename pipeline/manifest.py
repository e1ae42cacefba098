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


def make(cfg: BuildConfig, generator: dict[str, Any], shards: dict[int, dict[str, Any]], complete: bool,
         index: tuple[str, int] | None = None) -> dict[str, Any]:
    """The manifest; ``index`` is the (sha256, size) of ``index.parquet``, recorded once it is written."""
    out = {
        **identity(cfg, generator),
        "versions": package_versions(),
        "num_classes": cfg.ids,
        "num_samples": cfg.num_samples,
        "num_shards": cfg.num_shards,
        "pattern": schema.shard_pattern(cfg.prefix, cfg.num_shards),
        "image_format": cfg.format,
        "index": schema.INDEX_NAME,
        "complete": bool(complete),
        # Written after the complete manifest (pipeline.card), and named here so that they are known as ours.
        **({"files": {"wids_index": schema.WIDS_INDEX_NAME, "preview": schema.PREVIEW_NAME, "card": schema.CARD_NAME}}
           if complete else {}),
        "shards": [
            {"index": i, "name": s["name"], "count": s["count"], "sha256": s["sha256"], "bytes": s["bytes"]}
            for i, s in sorted(shards.items())
        ],
    }
    if index is not None:
        out["index_sha256"], out["index_bytes"] = index[0], int(index[1])
    return out


def dumps(manifest: dict[str, Any]) -> bytes:
    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def write(storage: Storage, manifest: dict[str, Any]) -> None:
    storage.write(schema.MANIFEST_NAME, dumps(manifest))


def read(storage: Storage, remedy: str = "remove it or choose another --out") -> dict[str, Any] | None:
    """The manifest at ``storage``, checked by ``check``, or None where there is none; ``remedy`` ends
    the error for one that cannot be read or is not a synthface manifest."""
    where = storage.path(schema.MANIFEST_NAME)
    try:
        data = storage.read(schema.MANIFEST_NAME)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a directory in its place, no permission, ...
        raise SynthError(f"cannot read {where} ({exc.strerror or type(exc).__name__}): {remedy}") from None
    try:
        manifest = orjson.loads(data)
        check(manifest)
    except ValueError as exc:
        raise SynthError(f"{where} is not a synthface manifest ({exc}): {remedy}") from None
    return manifest


def _whole(value: Any, what: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what} is {value!r}, not a whole number >= {low}")
    return value


def check(manifest: Any) -> None:
    """Raise ValueError naming the first thing wrong with a manifest's structure.

    Shard names must be exactly the names this build format gives (``schema.shard_name``): a
    manifest is never allowed to point a reader at files outside its dataset.
    """
    if not isinstance(manifest, dict):
        raise ValueError(f"a JSON {type(manifest).__name__}, not an object")
    cfg = manifest.get("config")
    if not isinstance(cfg, dict):
        raise ValueError(f"config is {cfg!r}, not a mapping")
    prefix = cfg.get("prefix")
    if not isinstance(prefix, str) or not prefix or not prefix.replace("_", "").isalnum():
        raise ValueError(f"config.prefix is {prefix!r}, not a shard prefix")
    num_shards = _whole(manifest.get("num_shards"), "num_shards")
    for key in ("num_classes", "num_samples"):
        if key in manifest:
            _whole(manifest[key], key, 1)
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise ValueError(f"shards is {type(shards).__name__}, not a list")
    seen = set()
    for n, entry in enumerate(shards):
        if not isinstance(entry, dict):
            raise ValueError(f"shards[{n}] is not a mapping")
        index = _whole(entry.get("index"), f"shards[{n}].index")
        if index in seen or index >= num_shards:
            raise ValueError(f"shards[{n}].index {index} repeats or is not below num_shards {num_shards}")
        seen.add(index)
        if entry.get("name") != schema.shard_name(prefix, index):
            raise ValueError(f"shards[{n}].name is {entry.get('name')!r}, not {schema.shard_name(prefix, index)!r}")
        _whole(entry.get("count"), f"shards[{n}].count")
        _whole(entry.get("bytes"), f"shards[{n}].bytes")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
            raise ValueError(f"shards[{n}].sha256 is {digest!r}, not a sha256 hex digest")
    files = manifest.get("files")
    card_files = {schema.WIDS_INDEX_NAME, schema.PREVIEW_NAME, schema.CARD_NAME}
    if files is not None and (not isinstance(files, dict) or not set(files.values()) <= card_files):
        raise ValueError(f"files is {files!r}, not the names of a build's {', '.join(sorted(card_files))}")
    if "index_sha256" in manifest:
        digest = manifest["index_sha256"]
        if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
            raise ValueError(f"index_sha256 is {digest!r}, not a sha256 hex digest")
        _whole(manifest.get("index_bytes"), "index_bytes")


def open_build(out: str, storage_options: dict[str, Any] | None = None,
               remedy: str = "remove it or choose another --out") -> tuple[Storage, dict[str, Any]]:
    """The storage and manifest of a build's output, for commands that read one (``synth verify``, ``synth inspect``)."""
    storage = Storage(out, storage_options)
    if storage.local and not storage.exists(""):
        raise SynthError(f"{out!r} does not exist: give the --out directory of a build")
    man = read(storage, remedy)
    if man is None:
        raise SynthError(f"{storage.url} has no {schema.MANIFEST_NAME}: give the --out of a synthface build")
    return storage, man


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
