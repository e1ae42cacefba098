"""``synth inspect``: what a built dataset holds, from its manifest and ``index.parquet``, as text and a PNG.

Counts, φ, pose and per-shard classes come from the index (every sample). The lighting direction
and the skin tone are not index columns, so they come from the ``.json`` members of a few shards
spread over the dataset (``--samples``): the lighting direction from the first-order spherical
harmonics of each record's lighting, and the skin tone from ``extra.skin_tone`` where the generator
reports one (``morphable`` does). Nothing here needs the generator installed.

The charts are drawn with PIL (histograms and bar charts with titles and axis labels), so the
command adds no plotting dependency.
"""

from __future__ import annotations

import io
import math
import tarfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from synthface.errors import SynthError
from synthface.generator import layout

from . import manifest as manifest_io
from . import card, schema
from .storage import Storage

DEFAULT_SAMPLES = 2000


@dataclass
class Shards:
    """What the ``.json`` members of the shards read give: lighting directions and skin tones."""

    names: list[str]
    azimuth: np.ndarray  # degrees, positive: light from the image's right
    elevation: np.ndarray  # degrees, positive: light from above
    skin_tone: np.ndarray | None  # the generator's value per sample, where it reports one


def light_direction(lighting: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and elevation (degrees) of the dominant light of [N, 27] lighting coefficients.

    In the head frame of ``generator.layout`` (x to the image right, y up, z towards the camera), the
    first-order SH terms of the channel mean give the direction as (x, y, z) = (-Y3, -Y1, Y2), as the
    morphable renderer's highlight reads them. Azimuth 0 is light from the camera's side.
    """
    sh = np.asarray(lighting, dtype=np.float64).reshape(-1, layout.SH_CHANNELS, layout.SH_BANDS).mean(axis=1)
    x, y, z = -sh[:, 3], -sh[:, 1], sh[:, 2]
    return np.degrees(np.arctan2(x, z)), np.degrees(np.arctan2(y, np.hypot(x, z)))


def read_shards(storage: Storage, man: dict[str, Any], samples: int) -> Shards:
    """Metadata of about ``samples`` samples: whole shards, evenly spaced over the dataset."""
    entries = sorted(man["shards"], key=lambda e: int(e["index"]))
    if not entries or samples <= 0:
        return Shards([], np.empty(0), np.empty(0), None)
    per_shard = max(1, int(np.mean([int(e["count"]) for e in entries])))
    take = min(len(entries), max(1, math.ceil(samples / per_shard)))
    chosen = [entries[i] for i in np.unique(np.linspace(0, len(entries) - 1, take).round().astype(int))]
    lighting, tones = [], []
    for entry in chosen:
        with tarfile.open(fileobj=io.BytesIO(storage.read(entry["name"])), mode="r:") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".json"):
                    meta = orjson.loads(tar.extractfile(member).read())
                    lighting.append(meta["coeffs"]["lighting"])
                    tone = (meta.get("extra") or {}).get("skin_tone")
                    tones.append(np.nan if tone is None else float(tone))
    az, el = light_direction(np.asarray(lighting, dtype=np.float64).reshape(-1, layout.SIZES["lighting"]))
    tone_arr = np.asarray(tones, dtype=np.float64)
    return Shards([e["name"] for e in chosen], az, el, None if np.isnan(tone_arr).all() else tone_arr[~np.isnan(tone_arr)])


def summarise(man: dict[str, Any], table, shards: Shards) -> dict[str, Any]:
    """The numbers ``synth inspect`` prints, from the manifest, the index table and the shards read."""
    cols = {name: table.column(name).to_numpy() for name in ("class", "label", "partner", "phi", "yaw", "pitch", "roll",
                                                              "light_ambient", "light_directional", "expression_norm")}
    shard_col = np.asarray(table.column("shard").to_pylist())
    phi_values, phi_counts = np.unique(np.round(cols["phi"], 6), return_counts=True)
    per_shard = {}
    for name in sorted(set(shard_col.tolist())):
        mask = shard_col == name
        per_shard[name] = {"samples": int(mask.sum()), "classes": int(np.unique(cols["class"][mask]).size)}

    def spread(values: np.ndarray) -> dict[str, float]:
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return {}
        return {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean()),
                "std": float(values.std())}

    return {
        "samples": int(table.num_rows),
        "classes": int(np.unique(cols["class"]).size),
        "labels": int(np.unique(cols["label"]).size),
        "shards": len(per_shard),
        "manifest": {"samples": man.get("num_samples"), "classes": man.get("num_classes"), "shards": man.get("num_shards"),
                     "complete": bool(man.get("complete"))},
        "generator": dict(man.get("generator") or {}),
        "generator_path": man["config"]["generator"],
        "synthface": (man.get("versions") or {}).get("synthface"),
        "sampling": dict(man["config"]["sampling"]),
        "phi": {f"{v:g}": int(c) for v, c in zip(phi_values.tolist(), phi_counts.tolist())},
        "mixed": int(((cols["partner"] >= 0) & (cols["phi"] < 1.0)).sum()),
        "pose": {axis: spread(cols[axis]) for axis in ("yaw", "pitch", "roll")},
        "expression_norm": spread(cols["expression_norm"]),
        "light_ambient": spread(cols["light_ambient"]),
        "light_directional": spread(cols["light_directional"]),
        "per_shard": per_shard,
        "read": {"shards": shards.names, "samples": int(shards.azimuth.size),
                 "azimuth": spread(shards.azimuth), "elevation": spread(shards.elevation),
                 "skin_tone": None if shards.skin_tone is None else spread(shards.skin_tone)},
    }


def _range(r: dict[str, float], unit: str = "") -> str:
    return (f"min {r['min']:.2f}{unit}  max {r['max']:.2f}{unit}  mean {r['mean']:.2f}{unit}  std {r['std']:.2f}{unit}"
            if r else "none")


def report(s: dict[str, Any], url: str, list_shards: bool = False) -> str:
    """The summary as text lines."""
    m, samp = s["manifest"], s["sampling"]
    mixup = samp.get("mixup")
    schedule = "off" if not mixup else (f"{len(mixup)} values {min(mixup):g}..{max(mixup):g}")
    lines = [
        f"dataset     {url}" + ("" if m["complete"] else " (incomplete build: the index may be missing shards)"),
        f"samples     {s['samples']:,}" + ("" if m["samples"] == s["samples"] else f" (manifest: {m['samples']:,})"),
        f"classes     {s['classes']:,} ({s['labels']:,} distinct labels)"
        + ("" if m["classes"] == s["classes"] else f" (manifest: {m['classes']:,})"),
        f"shards      {s['shards']:,}" + ("" if m["shards"] == s["shards"] else f" (manifest: {m['shards']:,})"),
        f"generator   {s['generator'].get('name')} version {s['generator'].get('version')} ({s['generator_path']}), "
        f"synthface {s['synthface']}",
        f"sampling    factors {samp['factors']}; mixup {schedule}; pose {samp['pose_distribution']} yaw "
        f"{samp['yaw_range'][0]:g}..{samp['yaw_range'][1]:g}, pitch {samp['pitch_range'][0]:g}..{samp['pitch_range'][1]:g}, "
        f"roll {samp['roll_range'][0]:g}..{samp['roll_range'][1]:g}; expression {samp['expression_strength']:g}; "
        f"lighting {samp['lighting_variety']:g}",
        f"phi         {s['mixed']:,} of {s['samples']:,} images mixed ({100 * s['mixed'] / max(s['samples'], 1):.1f}%)",
    ]
    lines += [f"  {v:>8}  {c:>9,}  {100 * c / max(s['samples'], 1):5.1f}%" for v, c in s["phi"].items()]
    lines.append("pose (deg)")
    lines += [f"  {axis:<8}  {_range(s['pose'][axis])}" for axis in ("yaw", "pitch", "roll")]
    lines.append(f"expression  norm {_range(s['expression_norm'])}")
    lines.append(f"lighting    ambient {_range(s['light_ambient'])}")
    lines.append(f"            directional {_range(s['light_directional'])}")
    read = s["read"]
    where = f"{read['samples']:,} samples of {card.count(len(read['shards']), 'shard')}"
    lines.append(f"  azimuth   {_range(read['azimuth'], '°')}  ({where}; + from the image right)")
    lines.append(f"  elevation {_range(read['elevation'], '°')}  (+ from above)")
    tone = read["skin_tone"]
    lines.append(f"skin tone   {_range(tone)}  ({where})" if tone is not None
                 else f"skin tone   not recorded by generator {s['generator'].get('name')}")
    counts = np.array([v["classes"] for v in s["per_shard"].values()])
    lines.append(f"per shard   classes: min {counts.min():,}  median {int(np.median(counts)):,}  max {counts.max():,}"
                 if counts.size else "per shard   no shards")
    if list_shards or len(s["per_shard"]) <= 20:
        for name, v in s["per_shard"].items():
            lines.append(f"  {name}  {v['samples']:>7,} samples  {v['classes']:>7,} classes")
    else:
        lines.append(f"  ({len(s['per_shard']):,} shards: --per-shard lists each)")
    return "\n".join(lines)


# --- the chart -------------------------------------------------------------------------------

_PANEL_W, _PANEL_H = 400, 250
_BG, _FG, _AXIS, _BAR = (255, 255, 255), (20, 20, 20), (120, 120, 120), (66, 110, 180)


def _panel(title: str, xlabel: str, heights: np.ndarray, ticks: list[tuple[float, str]], note: str = "") -> Image.Image:
    """A bar chart: ``heights`` in equal-width bars; ``ticks`` as (position in 0..1, label) under the x axis."""
    img = Image.new("RGB", (_PANEL_W, _PANEL_H), _BG)
    draw, font = ImageDraw.Draw(img), card.font()
    left, right, top, bottom = 48, _PANEL_W - 12, 26, _PANEL_H - 40
    draw.text((left, 6), title, fill=_FG, font=font)
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=_AXIS)
    peak = int(heights.max()) if heights.size and heights.max() > 0 else 0
    draw.text((4, top - 4), f"{peak:,}", fill=_FG, font=font)
    draw.text((4, bottom - 8), "0", fill=_FG, font=font)
    draw.text((4, (top + bottom) // 2 - 4), "count", fill=_AXIS, font=font)
    if heights.size and peak > 0:
        width = (right - left) / heights.size
        for i, h in enumerate(heights.tolist()):
            if h > 0:
                x0, x1 = left + i * width + (1 if width > 3 else 0), left + (i + 1) * width - (1 if width > 3 else 0)
                draw.rectangle([round(x0), round(bottom - (bottom - top) * h / peak), max(round(x0), round(x1) - 1),
                                bottom - 1], fill=_BAR)
    for pos, label in ticks:
        x = round(left + pos * (right - left))
        draw.line([(x, bottom), (x, bottom + 3)], fill=_AXIS)
        draw.text((min(max(x - 3 * len(label), 0), _PANEL_W - 6 * len(label) - 2), bottom + 5), label, fill=_FG, font=font)
    draw.text((left, _PANEL_H - 14), xlabel + (f"   {note}" if note else ""), fill=_AXIS, font=font)
    return img


def _histogram(title: str, xlabel: str, values: np.ndarray, lo: float, hi: float, bins: int = 30, note: str = "") -> Image.Image:
    values = np.asarray(values, dtype=np.float64)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    heights, _ = np.histogram(values, bins=bins, range=(lo, hi))
    ticks = [(f, f"{lo + f * (hi - lo):.3g}") for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    return _panel(title, xlabel, heights, ticks, note)


def _bars(title: str, xlabel: str, labels: list[str], heights: list[int], note: str = "") -> Image.Image:
    n = len(labels)
    every = max(1, math.ceil(n / 8))
    ticks = [((i + 0.5) / n, labels[i]) for i in range(0, n, every)]
    return _panel(title, xlabel, np.asarray(heights), ticks, note)


def _limits(values: np.ndarray, declared: list[float] | None = None) -> tuple[float, float]:
    if declared is not None:
        return float(declared[0]), float(declared[1])
    if values.size == 0:
        return 0.0, 1.0
    return float(values.min()), float(values.max())


def chart(man: dict[str, Any], table, shards: Shards) -> bytes:
    """The distributions as one PNG: pose, φ, lighting, skin tone, classes per shard."""
    samp = man["config"]["sampling"]
    col = lambda name: table.column(name).to_numpy().astype(np.float64)  # noqa: E731
    panels = [_histogram(f"{axis} (deg)", f"{axis}, declared range {samp[f'{axis}_range'][0]:g}..{samp[f'{axis}_range'][1]:g}",
                         col(axis), *_limits(col(axis), samp[f"{axis}_range"])) for axis in ("yaw", "pitch", "roll")]
    phi, counts = np.unique(np.round(col("phi"), 6), return_counts=True)
    panels.append(_bars("phi (weight of the own identity)", "phi", [f"{v:g}" for v in phi.tolist()], counts.tolist()))
    note = f"{shards.azimuth.size:,} samples, {card.count(len(shards.names), 'shard')}"
    panels.append(_histogram("light azimuth (deg)", "+ from the image right", shards.azimuth, -180.0, 180.0, 36, note))
    panels.append(_histogram("light elevation (deg)", "+ from above", shards.elevation, -90.0, 90.0, 36, note))
    panels.append(_histogram("light directional strength", "first-order SH norm (index)", col("light_directional"),
                             *_limits(col("light_directional"))))
    if shards.skin_tone is not None:
        panels.append(_histogram("skin tone", "0 lightest .. 1 darkest", shards.skin_tone, 0.0, 1.0,
                                 20, note))
    per_shard: dict[str, set[int]] = {}
    for name, cls in zip(table.column("shard").to_pylist(), table.column("class").to_pylist()):
        per_shard.setdefault(name, set()).add(cls)
    names = sorted(per_shard)
    if len(names) <= 40:
        panels.append(_bars("classes per shard", "shard", [n.rsplit("-", 1)[-1].split(".")[0].lstrip("0") or "0"
                                                            for n in names], [len(per_shard[n]) for n in names]))
    else:
        sizes = np.array([len(per_shard[n]) for n in names], dtype=np.float64)
        panels.append(_histogram("classes per shard", f"distinct classes in a shard ({len(names):,} shards)", sizes,
                                 *_limits(sizes), 20))
    cols_n = 3
    rows_n = math.ceil(len(panels) / cols_n)
    sheet = Image.new("RGB", (cols_n * _PANEL_W, rows_n * _PANEL_H), _BG)
    for i, panel in enumerate(panels):
        sheet.paste(panel, ((i % cols_n) * _PANEL_W, (i // cols_n) * _PANEL_H))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def run(dataset: str, plot: str | None, samples: int = DEFAULT_SAMPLES, list_shards: bool = False,
        storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    storage, man = manifest_io.open_build(dataset, storage_options)
    try:
        table = pq.read_table(io.BytesIO(storage.read(schema.INDEX_NAME)))
    except FileNotFoundError:
        raise SynthError(f"{storage.url} has no {schema.INDEX_NAME} yet (the build is not complete): "
                         "re-run the same synth build to finish it") from None
    missing = [c for c in schema.INDEX_COLUMNS if c not in table.column_names]
    if missing:
        raise SynthError(f"{storage.path(schema.INDEX_NAME)} has no column {missing[0]!r}: not a synthface index")
    shards = read_shards(storage, man, samples)
    summary = summarise(man, table, shards)
    print(report(summary, storage.url, list_shards))
    if plot:
        with open(plot, "wb") as f:
            f.write(chart(man, table, shards))
        print(f"plot        {plot}")
    return summary
