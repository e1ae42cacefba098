"""``index.parquet``: one row per sample, no image bytes, for selecting and auditing a dataset.

Rows come from the sampled records alone (plan + sampler), never from rendered pixels, so a
resumed build recomputes exactly the rows of the shards it skipped and writes the same index.
Rows are ordered by shard, then by position within the shard (the order of the tar members).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthface.generator import layout
from synthface.generator.sampler import SampleBatch

from . import schema

SOFT_LABEL = pa.list_(pa.struct([("class", pa.int64()), ("weight", pa.float32())]))
SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("shard", pa.string()),
        ("class", pa.int64()),
        ("image", pa.int64()),
        ("label", pa.int64()),
        ("partner", pa.int64()),
        ("phi", pa.float64()),
        ("soft_label", SOFT_LABEL),
        ("yaw", pa.float32()),
        ("pitch", pa.float32()),
        ("roll", pa.float32()),
        ("expression_norm", pa.float32()),
        ("light_ambient", pa.float32()),
        ("light_directional", pa.float32()),
        ("identity_norm", pa.float32()),
    ]
)
assert tuple(SCHEMA.names) == schema.INDEX_COLUMNS


def columns(batch: SampleBatch, shard_file: str) -> dict[str, Any]:
    """Index columns of a sample batch, as plain arrays (cheap to send between processes)."""
    f = layout.split(batch.coeffs)
    pitch, yaw, roll = np.degrees(f["pose"].astype(np.float64)).T
    sh = layout.lighting_matrix(batch.coeffs).astype(np.float64)
    # Soft labels as flat arrays (cheap to ship and to turn into Arrow): each record's (class, weight) entries in order.
    soft = batch.soft_labels()
    entries = [entry for label in soft for entry in label]
    return {
        "key": [schema.sample_key(int(c), int(k)) for c, k in zip(batch.cls, batch.image)],
        "shard": [shard_file] * len(batch),
        "class": batch.cls.astype(np.int64),
        "image": batch.image.astype(np.int64),
        "label": batch.labels(),
        "partner": batch.partner.astype(np.int64),
        "phi": batch.phi.astype(np.float64),
        "soft_count": np.array([len(label) for label in soft], dtype=np.int32),
        "soft_class": np.array([c for c, _ in entries], dtype=np.int64),
        "soft_weight": np.array([w for _, w in entries], dtype=np.float32),
        "yaw": yaw.astype(np.float32),
        "pitch": pitch.astype(np.float32),
        "roll": roll.astype(np.float32),
        "expression_norm": np.linalg.norm(f["expression"].astype(np.float64), axis=1).astype(np.float32),
        # Mean DC term with the renderer's offset: overall brightness of the ambient light.
        "light_ambient": (sh[:, :, 0].mean(axis=1) + layout.SH_DC_OFFSET).astype(np.float32),
        # Strength of the first-order (directional) band, averaged over colour channels.
        "light_directional": np.linalg.norm(sh[:, :, 1:4], axis=2).mean(axis=1).astype(np.float32),
        "identity_norm": np.linalg.norm(batch.coeffs[:, layout.IDENTITY].astype(np.float64), axis=1).astype(np.float32),
    }


_SOFT = ("soft_count", "soft_class", "soft_weight")
_COLUMNS = tuple(n for n in SCHEMA.names if n != "soft_label") + _SOFT


def concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if not parts:
        return {name: [] for name in _COLUMNS}
    out = {}
    for name in _COLUMNS:
        values = [p[name] for p in parts]
        out[name] = np.concatenate(values) if isinstance(values[0], np.ndarray) else [v for part in values for v in part]
    return out


def table(shard_columns: list[dict[str, Any]]) -> pa.Table:
    """All shards' columns (in shard order) as one Arrow table."""
    cols = concat(shard_columns)
    offsets = np.concatenate([[0], np.cumsum(np.asarray(cols["soft_count"], dtype=np.int64))]).astype(np.int32)
    items = pa.StructArray.from_arrays(
        [pa.array(np.asarray(cols["soft_class"], dtype=np.int64)), pa.array(np.asarray(cols["soft_weight"], dtype=np.float32))],
        fields=list(SOFT_LABEL.value_type),
    )
    arrays = {name: pa.array(cols[name], type=SCHEMA.field(name).type) for name in SCHEMA.names if name != "soft_label"}
    arrays["soft_label"] = pa.ListArray.from_arrays(pa.array(offsets), items, type=SOFT_LABEL)
    return pa.table({name: arrays[name] for name in SCHEMA.names}, schema=SCHEMA)


def to_bytes(tbl: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(tbl, buf, compression="zstd", row_group_size=1 << 20)
    return buf.getvalue()
