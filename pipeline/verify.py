"""``synth verify``: re-read every shard against the manifest and name every bad one.

A shard is good when its bytes hash to the manifest's sha256, it parses as a tar, it holds the
listed number of samples, each with an image that decodes, a ``.cls`` and a ``.json`` that
``schema.parse_metadata`` accepts and whose label matches ``.cls``, and no key repeats anywhere
in the dataset. A complete build's wids index and dataset card must also be the ones its manifest
gives, and its preview one that a build wrote.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
from typing import Any

from synthface.errors import SynthError

from . import manifest as manifest_io
from . import card, schema, writer


def check_shard(data: bytes, entry: dict[str, Any], fmt: str, seen: set[str]) -> list[str]:
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
                key, _, ext = member.name.partition(".")
                samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as exc:
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
            if meta.get("key") != key or str(meta.get("label")) != parts["cls"].decode("ascii", "replace"):
                raise ValueError("key or label disagrees with the member name or .cls")
        except ValueError as exc:
            problems.append(f"sample {key}: bad metadata ({exc})")
        if len(problems) > 20:
            break
    return problems


def run(out: str, storage_options: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    storage, man = manifest_io.open_build(out, storage_options)
    prefix = man["config"]["prefix"]
    fmt = man.get("image_format") or man["config"]["format"]
    listed = {int(e["index"]): e for e in man["shards"]}
    bad: dict[str, str] = {}
    for shard in range(int(man["num_shards"])):
        if shard not in listed:
            bad[schema.shard_name(prefix, shard)] = "not recorded in the manifest (unfinished build: re-run synth build)"
    seen: set[str] = set()
    entries = [listed[s] for s in sorted(listed)]
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
                continue
            problems = check_shard(data, entry, fmt, seen)
            if problems:
                bad[entry["name"]] = "; ".join(problems[:3]) + (f"; {len(problems) - 3} more problems" if len(problems) > 3 else "")
            samples += entry["count"]
            if bar is not None:
                bar.update(entry["count"])
    finally:
        if bar is not None:
            bar.close()
    if man.get("complete") and not storage.exists(schema.INDEX_NAME):
        bad[schema.INDEX_NAME] = "missing"
    if man.get("complete"):
        bad.update(card.problems(storage, man))
    if bad:
        for name, why in sorted(bad.items()):
            print(f"BAD {name}: {why}", file=sys.stderr)
        names = sorted(bad)
        raise SynthError(f"{len(bad)} bad file(s) in {storage.url}: {', '.join(names[:20])}"
                         + (f" and {len(names) - 20} more" if len(names) > 20 else ""))
    print(f"ok: {len(entries)} shards, {samples} samples in {storage.url} match {schema.MANIFEST_NAME}")
    return {"shards": len(entries), "samples": samples}
