"""``synth verify``: re-read every shard and the index against the manifest and name every bad one.

A shard is good when its bytes hash to the manifest's sha256, it parses as a tar (no member claims
more bytes than the shard has), it holds the listed number of samples, each with an image that
decodes without errors, a ``.cls`` and a ``.json`` that ``schema.parse_metadata`` accepts, whose
soft label is well formed (whole class numbers, weights summing to 1) and whose label matches
``.cls``, and no key repeats anywhere in the dataset. The index is good when its bytes hash to
the sha256 the manifest recorded for it and its rows are exactly the shards' samples, in order.
A build that is not finished (``complete`` false) is reported as such, and fails verification.
A complete build's wids index and dataset card must also be the ones its manifest gives, and
its preview one that a build wrote.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
from typing import Any

import numpy as np

from synthface.errors import SynthError

from . import manifest as manifest_io
from . import card, schema, writer

# Per sample, what the index must agree with.
_ROW_FIELDS = ("key", "shard", "class", "label", "partner", "phi", "soft_label")


def check_shard(data: bytes, entry: dict[str, Any], fmt: str, seen: set[str],
                rows: list[dict[str, Any]] | None = None) -> list[str]:
    """Problems with one shard (empty if none); appends each sample's index fields to ``rows``."""
    problems = []
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.get("sha256"):
        problems.append(f"sha256 {digest[:12]}... differs from the manifest's {str(entry.get('sha256'))[:12]}...")
    if entry.get("bytes") is not None and len(data) != entry["bytes"]:
        problems.append(f"{len(data)} bytes, manifest says {entry['bytes']}")
    samples: dict[str, dict[str, bytes]] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if member.offset_data + member.size > len(data):
                    raise tarfile.ReadError(f"member {member.name} claims {member.size} bytes, past the end of the shard")
                key, _, ext = member.name.partition(".")
                samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as exc:
        return problems + [f"not a readable tar ({exc})"]
    if len(samples) != entry.get("count"):
        problems.append(f"{len(samples)} samples, manifest says {entry.get('count')}")
    for key, parts in samples.items():
        if key in seen:
            problems.append(f"sample {key} appears twice in the dataset")
        seen.add(key)
        missing = [e for e in (fmt, "cls", "json") if e not in parts]
        if missing:
            problems.append(f"sample {key} has no .{missing[0]}")
            continue
        try:
            image = writer.decode_image(parts[fmt], fmt)
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"shape {image.shape}")
        except Exception as exc:  # any decoder error means a bad image
            problems.append(f"sample {key}: image does not decode ({exc})")
        try:
            meta = schema.parse_metadata(parts["json"])
            soft = schema.soft_label_entries(meta["soft_label"])
            label = schema.whole(meta.get("label"))
            if meta.get("key") != key or label is None or str(label) != parts["cls"].decode("ascii", "replace"):
                raise ValueError("key or label disagrees with the member name or .cls")
            if rows is not None:
                rows.append({"key": key, "shard": entry["name"], "class": meta.get("class"), "label": label,
                             "partner": meta.get("partner"), "phi": meta.get("phi"), "soft_label": soft})
        except ValueError as exc:
            problems.append(f"sample {key}: bad metadata ({exc})")
        if len(problems) > 20:
            break
    return problems


def check_index(data: bytes, man: dict[str, Any], rows: list[dict[str, Any]] | None) -> list[str]:
    """Problems with index.parquet: its sha256 against the manifest's, and its rows against ``rows``
    (the shards' samples in order; None when a shard could not be read, so rows are not compared)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    problems = []
    if "index_sha256" not in man:
        problems.append("the manifest records no sha256 for it (a build of an older synthface): re-run synth build "
                        "with the same settings to record one")
    elif hashlib.sha256(data).hexdigest() != man["index_sha256"] or len(data) != man.get("index_bytes"):
        problems.append("its bytes differ from the sha256 the manifest recorded")
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        return problems + [f"not a readable Parquet file ({' '.join(str(exc).split())[:120]})"]
    if tuple(table.column_names) != schema.INDEX_COLUMNS:
        return problems + ["its columns are not the index's"]
    if rows is None:
        return problems
    if table.num_rows != len(rows):
        return problems + [f"{table.num_rows} rows for {len(rows)} samples"]
    got = table.select(list(_ROW_FIELDS)).to_pylist()
    for n, (row, want) in enumerate(zip(got, rows)):
        soft = [(s["class"], s["weight"]) for s in row["soft_label"] or []]
        same = (all(row[k] == want[k] for k in ("key", "shard", "class", "label", "partner"))
                and np.isclose(row["phi"], want["phi"]) and len(soft) == len(want["soft_label"])
                and all(a == c and np.isclose(w, v, atol=1e-6) for (a, w), (c, v) in zip(soft, want["soft_label"])))
        if not same:
            problems.append(f"row {n} ({row['key']}) does not match sample {want['key']} of {want['shard']}")
            break
    return problems


def run(out: str, storage_options: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    storage, man = manifest_io.open_build(
        out, storage_options, remedy="it cannot be verified: restore it, or build the dataset again into a new --out")
    prefix = man["config"]["prefix"]
    fmt = man.get("image_format") or man["config"].get("format")
    if fmt not in schema.IMAGE_FORMATS:
        raise SynthError(f"{storage.path(schema.MANIFEST_NAME)} names image format {fmt!r}, not one of "
                         f"{', '.join(schema.IMAGE_FORMATS)}: it cannot be verified")
    listed = {e["index"]: e for e in man["shards"]}
    bad: dict[str, str] = {}
    for shard in range(man["num_shards"]):
        if shard not in listed:
            bad[schema.shard_name(prefix, shard)] = "not recorded in the manifest (unfinished build: re-run synth build)"
    seen: set[str] = set()
    entries = [listed[s] for s in sorted(listed)]
    rows: list[dict[str, Any]] | None = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(e["count"] for e in entries), unit="img", desc="verify", file=sys.stderr, dynamic_ncols=True)
    samples = 0
    try:
        for entry in entries:
            try:
                data = storage.read(entry["name"])
            except FileNotFoundError:
                bad[entry["name"]] = "missing"
                rows = None
                continue
            except OSError as exc:  # a directory in its place, no permission, ...
                bad[entry["name"]] = f"cannot be read ({exc.strerror or type(exc).__name__})"
                rows = None
                continue
            problems = check_shard(data, entry, fmt, seen, rows)
            if problems:
                bad[entry["name"]] = "; ".join(problems[:3]) + (f"; {len(problems) - 3} more problems" if len(problems) > 3 else "")
                rows = None
            samples += entry["count"]
            if bar is not None:
                bar.update(entry["count"])
    finally:
        if bar is not None:
            bar.close()
    if not man.get("complete"):
        bad[schema.MANIFEST_NAME] = "the build is not finished (the manifest says complete: false): re-run synth build " \
                                    "with the same settings"
    else:
        try:
            data = storage.read(schema.INDEX_NAME)
        except FileNotFoundError:
            bad[schema.INDEX_NAME] = "missing"
        except OSError as exc:
            bad[schema.INDEX_NAME] = f"cannot be read ({exc.strerror or type(exc).__name__})"
        else:
            problems = check_index(data, man, rows)
            if problems:
                bad[schema.INDEX_NAME] = "; ".join(problems[:3]) + ": re-run synth build with the same settings to rewrite it"
    if man.get("complete"):
        bad.update(card.problems(storage, man))
    if bad:
        for name, why in sorted(bad.items()):
            print(f"BAD {name}: {why}", file=sys.stderr)
        names = sorted(bad)
        raise SynthError(f"{len(bad)} bad file(s) in {storage.url}: {', '.join(names[:20])}"
                         + (f" and {len(names) - 20} more" if len(names) > 20 else ""))
    print(f"ok: {len(entries)} shards, {samples} samples and the index in {storage.url} match {schema.MANIFEST_NAME}")
    return {"shards": len(entries), "samples": samples}
