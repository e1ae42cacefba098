"""The dataset format, in one place: file names, sample keys, per-sample metadata, index columns.

A build directory (local path or fsspec URL) holds::

    {prefix}-000000.tar ...        WebDataset shards (brace pattern: shard_pattern())
    {prefix}-000000.stats.json     per-shard stats: count, sha256, bytes, seconds, node
    manifest.json                  resolved config, versions, shard list with counts and sha256
    index.parquet                  one row per sample, no image bytes

Each sample in a shard has three members sharing its key::

    {key}.jpg | .png | .webp       the aligned RGB image
    {key}.cls                      the dominant class as ASCII digits (webdataset convention)
    {key}.json                     metadata (see sample_metadata)

Readers should parse ``.json`` with ``parse_metadata``, which checks the schema version.

A held-out verification set (``synth pairs``) is written in LFW's layout, which ``synth eval`` and
``synth train --val`` read: ``Name/Name_0001.jpg`` images and a ``pairs.txt`` (see ``pairs_image``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from synthface.generator import layout

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.parquet"
DEFAULT_PREFIX = "synth"
IMAGE_FORMATS = ("jpg", "png", "webp")


def shard_name(prefix: str, shard: int) -> str:
    return f"{prefix}-{shard:06d}.tar"


def stats_name(prefix: str, shard: int) -> str:
    return f"{prefix}-{shard:06d}.stats.json"


def shard_pattern(prefix: str, num_shards: int) -> str:
    """Brace-expandable pattern of all shards, as webdataset and open_clip take it."""
    if num_shards == 1:
        return shard_name(prefix, 0)
    return f"{prefix}-{{{0:06d}..{num_shards - 1:06d}}}.tar"


PAIRS_NAME = "pairs.txt"


def pairs_image(name: str, number: int) -> str:
    """An image of a pairs set in LFW naming, without its extension: ``Name/Name_0001``."""
    return f"{name}/{name}_{int(number):04d}"


def sample_key(cls: int, image: int) -> str:
    """Stable and unique within a dataset; no dots, since webdataset splits member names at the first one."""
    return f"{cls:08d}_{image:05d}"


def sample_metadata(
    *,
    key: str,
    cls: int,
    image: int,
    label: int,
    soft_label: list[list[float]],
    phi: float,
    partner: int,
    coeffs: np.ndarray,
    landmarks: np.ndarray,
    generator: dict[str, Any],
    seed: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``.json`` member of a sample. ``coeffs`` is one 286-value record."""
    fields = layout.split(np.asarray(coeffs, dtype=np.float32))
    pitch, yaw, roll = (float(v) for v in np.degrees(fields["pose"].astype(np.float64)))
    meta = {
        "schema": SCHEMA_VERSION,
        "key": key,
        "class": int(cls),
        "image": int(image),
        "label": int(label),
        "soft_label": soft_label,
        "phi": float(phi),
        "partner": int(partner),
        "pose_deg": {"pitch": round(pitch, 3), "yaw": round(yaw, 3), "roll": round(roll, 3)},
        "landmarks": np.round(np.asarray(landmarks, dtype=np.float64), 3).tolist(),
        "coeffs": {name: value for name, value in fields.items()},
        "generator": generator,
        "seed": int(seed),
    }
    if extra:
        meta["extra"] = extra
    return meta


def dumps(obj: Any) -> bytes:
    """Deterministic JSON bytes (float32 arrays in their shortest round-trip form)."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_SORT_KEYS)


def parse_metadata(data: bytes | str | dict) -> dict[str, Any]:
    """Parse a sample's ``.json`` member and check it is a schema this code understands."""
    meta = data if isinstance(data, dict) else orjson.loads(data)
    if not isinstance(meta, dict) or "soft_label" not in meta:
        raise ValueError("sample metadata has no soft_label: not a synthface sample")
    version = meta.get("schema")
    if version != SCHEMA_VERSION:
        raise ValueError(f"sample metadata schema {version!r} is not supported (this code reads {SCHEMA_VERSION})")
    return meta


# Columns of index.parquet, in order. soft_label is list<struct<class: int64, weight: float32>>.
INDEX_COLUMNS = (
    "key", "shard", "class", "image", "label", "partner", "phi", "soft_label",
    "yaw", "pitch", "roll", "expression_norm", "light_ambient", "light_directional",
    "identity_norm",
)
