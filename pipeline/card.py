"""What a finished build adds for other readers: a wids shard index, a preview sheet and a dataset card.

All three are written after the final manifest (which names them under ``files``) and follow from
it alone (the preview also from the shards it shows), so a no-op or resumed run writes the same
bytes again: no timestamps, host names or output paths go into them.

* ``shardindex.json``: webdataset's ``wids`` index (``wids-shard-index-v1``): shard URLs relative
  to the index file and their sample counts, so ``wids.ShardListDataset(".../shardindex.json")``
  opens the dataset for random access.
* ``preview.png``: ``PREVIEW_ROWS`` identities (the first ones in shard 0) by ``PREVIEW_COLS`` of
  their images, decoded from the written shards, so it shows exactly what is there.
* ``README.md``: a Hugging Face style dataset card (YAML front matter, then what it is, the config
  as a recipe that rebuilds it, counts, the sample format, licence and terms, how to load it).
  It is written last: its presence means the other two are there.

Each file carries a mark (a comment, a PNG text chunk, an ``info`` field) by which ``ours`` tells
it from a user's file of the same name: a build never overwrites, and ``--overwrite`` never
deletes, a README.md it did not write.
"""

from __future__ import annotations

import io
import tarfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import yaml
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from synthface.errors import SynthError

from . import plan, schema, writer
from .config import BuildConfig
from .storage import TMP_MARK, Storage

FILES = (schema.WIDS_INDEX_NAME, schema.PREVIEW_NAME, schema.CARD_NAME)  # in the order they are written
PREVIEW_ROWS, PREVIEW_COLS = 8, 6
MARK = "synthface dataset card"
_CARD_MARK = f"<!-- {MARK}: synth build writes this file and rewrites it on every run of the build; edit a copy -->"
_PNG_SOFTWARE = "synthface"
_WIDS_KIND = "wids-shard-index-v1"
_WIDS_INFO = "synthface build: written by synth build from manifest.json"
_TILE = 112  # preview tiles are at most this tall (taller images are scaled down)
_LABEL_W = 64


# --- the wids index -------------------------------------------------------------------------


def wids_index(man: dict[str, Any]) -> bytes:
    shards = [{"url": e["name"], "nsamples": int(e["count"]), "filesize": int(e["bytes"])}
              for e in sorted(man["shards"], key=lambda e: int(e["index"]))]
    doc = {"__kind__": _WIDS_KIND, "wids_version": 1, "name": _name(man), "info": _WIDS_INFO, "shardlist": shards}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


# --- the preview ----------------------------------------------------------------------------


def preview_samples(cfg: BuildConfig) -> list[tuple[int, list[tuple[int, int]]]]:
    """[(class, [(image, global sample number), ...]), ...] for the preview: the first identities of
    shard 0 and their first images, located through the plan (image k of a class is in round k)."""
    classes = plan.samples(cfg, 0, min(PREVIEW_ROWS, cfg.ids))[0].tolist()
    rows: list[tuple[int, list[tuple[int, int]]]] = [(c, []) for c in classes]
    for k in range(min(PREVIEW_COLS, cfg.per_id)):
        start = k * cfg.ids
        in_round = plan.samples(cfg, start, start + cfg.ids)[0]
        where = np.flatnonzero(np.isin(in_round, classes))
        position = {int(in_round[p]): start + int(p) for p in where}
        for c, images in rows:
            images.append((k, position[c]))
    return rows


def font():
    """PIL's bitmap font (the same pixels with or without FreeType; Pillow >= 10.1 names it so)."""
    return getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)()


def _read_members(storage: Storage, name: str, wanted: set[str]) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(storage.read(name)), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile() and m.name in wanted}


def preview(storage: Storage, man: dict[str, Any]) -> bytes:
    """The contact sheet as PNG bytes, from the images in the shards."""
    cfg = BuildConfig.from_dict(man["config"])
    rows = preview_samples(cfg)
    fmt = cfg.format
    wanted: dict[str, set[str]] = {}
    for c, images in rows:
        for k, s in images:
            wanted.setdefault(schema.shard_name(cfg.prefix, s // cfg.shard_size), set()).add(f"{schema.sample_key(c, k)}.{fmt}")
    with ThreadPoolExecutor(8) as pool:
        members: dict[str, bytes] = {}
        for got in pool.map(lambda item: _read_members(storage, *item), sorted(wanted.items())):
            members.update(got)
    h, w = cfg.image_size
    scale = min(1.0, _TILE / h)
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    gap = 2
    cols = max(len(images) for _, images in rows)
    sheet = Image.new("RGB", (_LABEL_W + cols * (tw + gap), len(rows) * (th + gap) - gap), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    label_font = font()
    for r, (c, images) in enumerate(rows):
        y = r * (th + gap)
        draw.text((4, y + th // 2 - 12), "class", fill=(200, 200, 200), font=label_font)
        draw.text((4, y + th // 2), str(c), fill=(235, 235, 235), font=label_font)
        for col, (k, _) in enumerate(images):
            member = f"{schema.sample_key(c, k)}.{fmt}"
            if member not in members:
                raise SynthError(f"{member} is not in the shard the plan puts it in: run synth verify on {storage.url}")
            tile = Image.fromarray(writer.decode_image(members[member], fmt))
            if scale < 1.0:
                tile = tile.resize((tw, th), Image.Resampling.LANCZOS)
            sheet.paste(tile, (_LABEL_W + col * (tw + gap), y))
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", _PNG_SOFTWARE)
    info.add_text("Description", f"{_name(man)}: rows are classes {', '.join(str(c) for c, _ in rows)}; "
                  f"columns are their images 0-{cols - 1}, read back from the shards")
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", pnginfo=info, compress_level=6)
    return buf.getvalue()


# --- the dataset card -----------------------------------------------------------------------

_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


def size_category(n: int) -> str:
    return next((label for limit, label in _SIZES if n < limit), "1B<n<10B")


def _name(man: dict[str, Any]) -> str:
    return f"synthface {man['generator']['name']} {man['config']['ids']} x {man['config']['per_id']}"


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


_SYNTHFACE = "synthface, the code that built these shards, is MIT-licensed."
_TERMS = {
    "morphable": ("mit", None, (
        "The images were rendered by `morphable`, synthface's own procedural face model: no third-party "
        "weights, scans or photographs went into them, so they carry no third-party terms. " + _SYNTHFACE +
        " This card declares the dataset under the MIT licence as well; whoever publishes it may choose "
        "other terms and change the `license` field.")),
    "discofacegan": ("other", "discofacegan-weights", (
        "The images were rendered by `discofacegan`, synthface's PyTorch port of DiscoFaceGAN (Deng et al., "
        "CVPR 2020), from DiscoFaceGAN's pretrained weights, and derive from them: whatever terms those "
        "weights come with apply to these images, and honouring them is the user's responsibility "
        "(synthface does not ship the weights and grants no rights to what they produce). DiscoFaceGAN's "
        "code is MIT-licensed, and its network's code lineage includes NVIDIA's StyleGAN, released under "
        "CC BY-NC 4.0 (non-commercial). Hence `license: other`: check those terms before any use, "
        "commercial use above all. " + _SYNTHFACE)),
}


def _terms(generator: str) -> tuple[str, str | None, str]:
    if generator in _TERMS:
        return _TERMS[generator]
    return ("other", "generator-terms", (
        f"The images were rendered by the generator `{generator}`, which is not part of synthface: its terms, "
        "and those of any weights or assets it uses, apply to these images, and this card cannot state them "
        "(`license: other` until whoever publishes the dataset fills them in). " + _SYNTHFACE))


def _front_matter(man: dict[str, Any]) -> str:
    license_id, license_name, _ = _terms(man["generator"]["name"])
    meta: dict[str, Any] = {"license": license_id}
    if license_name:
        meta["license_name"] = license_name
    meta.update({
        "pretty_name": _name(man),
        "task_categories": ["image-classification", "image-feature-extraction"],
        "tags": ["face-recognition", "synthetic", "webdataset", "synthface"],
        "size_categories": [size_category(int(man["num_samples"]))],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": "train", "path": f"{man['config']['prefix']}-*.tar"}]}],
    })
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, default_flow_style=False) + "---\n"


def _mixup(mixup: list[float] | None) -> str:
    if not mixup:
        return "off: every image shows one identity, `soft_label` is `[[class, 1.0]]` and `partner` is -1"
    values = ", ".join(f"{v:g}" for v in mixup)
    return (f"on: an image of class i mixes its identity code with a partner class j's as "
            f"φ·i + (1−φ)·j, φ drawn uniformly from {{{values}}}; `soft_label` is `[[i, φ], [j, 1−φ]]` "
            f"and the label (`.cls`) is the class with the larger weight")


def card(man: dict[str, Any]) -> str:
    """The dataset card's text, from the manifest alone."""
    cfg = man["config"]
    samp = cfg["sampling"]
    gen = man["generator"]
    prefix, fmt = cfg["prefix"], man.get("image_format") or cfg["format"]
    h, w = cfg["image_size"]
    n, ids, shards = int(man["num_samples"]), int(cfg["ids"]), int(man["num_shards"])
    total = sum(int(e["bytes"]) for e in man["shards"])
    rows = preview_samples(BuildConfig.from_dict(cfg))
    version = (man.get("versions") or {}).get("synthface") or "unknown"
    recipe = yaml.safe_dump(cfg, sort_keys=True, default_flow_style=None).rstrip()
    pattern = man["pattern"]
    quality = f", quality {cfg['quality']}" if fmt in ("jpg", "webp") else ""
    _, _, terms = _terms(gen["name"])
    last = n - (shards - 1) * cfg["shard_size"]
    per_shard = (f"{n:,} (shard size {cfg['shard_size']:,})" if shards == 1 else
                 f"{cfg['shard_size']:,}" + (f" (the last {last:,})" if last != cfg["shard_size"] else ""))
    options = ", ".join(f"`{k}={v}`" for k, v in sorted(cfg["generator_options"].items())) or "none"
    lines = [
        _front_matter(man),
        _CARD_MARK,
        "",
        f"# {_name(man)}",
        "",
        f"A synthetic face-recognition dataset: {n:,} aligned face images of {ids:,} identities "
        f"({cfg['per_id']:,} each), rendered by the generator `{gen['name']}` (version {gen['version']}) and "
        f"written as {count(shards, 'WebDataset shard')} by synthface {version}. Identities are sampled from the "
        "generator, not photographed; every image carries a soft label and the coefficients it was rendered from.",
        "",
        f"![preview]({schema.PREVIEW_NAME})",
        "",
        f"`{schema.PREVIEW_NAME}`: one row per identity (classes {', '.join(str(c) for c, _ in rows)}, the first "
        f"in shard 0), one column per image (images 0-{len(rows[0][1]) - 1}), decoded from the shards.",
        "",
        "## Configuration",
        "",
        "| setting | value |",
        "|---|---|",
        f"| identities | {ids:,} |",
        f"| images per identity | {cfg['per_id']:,} |",
        f"| generator | `{cfg['generator']}` (`{gen['name']}` version {gen['version']}) |",
        f"| generator options | {options} |",
        f"| seed | {cfg['seed']} |",
        f"| image | {h}×{w} RGB, {fmt}{quality} |",
        f"| identity mixup | {_mixup(samp.get('mixup'))} |",
        f"| varying factors | `{samp['factors']}` |",
        f"| pose | yaw {samp['yaw_range'][0]:g}..{samp['yaw_range'][1]:g}°, pitch {samp['pitch_range'][0]:g}.."
        f"{samp['pitch_range'][1]:g}°, roll {samp['roll_range'][0]:g}..{samp['roll_range'][1]:g}°, "
        f"{samp['pose_distribution']} |",
        f"| expression strength | {samp['expression_strength']:g} |",
        f"| lighting variety | {samp['lighting_variety']:g} |",
        "",
        f"The same recipe and seed give byte-identical shards (with synthface {version} and `{gen['name']}` "
        f"version {gen['version']}): save this as `recipe.yaml` and run `synth build --config recipe.yaml --out DIR`.",
        "",
        "```yaml",
        recipe,
        "```",
        "",
        "## Counts",
        "",
        "| samples | classes | shards | samples per shard | shard bytes |",
        "|---|---|---|---|---|",
        f"| {n:,} | {ids:,} | {shards:,} | {per_shard} | {_bytes(total)} |",
        "",
        "## Files",
        "",
        "| file | content |",
        "|---|---|",
        f"| `{pattern}` | the shards |",
        f"| `{prefix}-NNNNNN.stats.json` | per shard: count, sha256, bytes, build timings |",
        f"| `{schema.MANIFEST_NAME}` | the resolved config, generator and package versions, every shard's sha256 |",
        f"| `{schema.INDEX_NAME}` | one row per sample: key, shard, class, label, partner, phi, soft_label, pose, "
        "expression, lighting and identity summaries |",
        f"| `{schema.WIDS_INDEX_NAME}` | the `wids` shard index (shard URLs relative to it, sample counts) |",
        f"| `{schema.PREVIEW_NAME}`, `{schema.CARD_NAME}` | the preview above and this card |",
        "",
        f"`synth verify DIR` re-reads every shard against `{schema.MANIFEST_NAME}`; `synth inspect DIR` summarises "
        "the index and plots its distributions.",
        "",
        "## Sample format",
        "",
        "Each sample is three tar members sharing a key (`00000042_00007` is image 7 of class 42):",
        "",
        "| member | content |",
        "|---|---|",
        f"| `KEY.{fmt}` | {h}×{w} RGB face aligned to the ArcFace 5-point template |",
        "| `KEY.cls` | the label (dominant class) as ASCII digits |",
        "| `KEY.json` | `soft_label` (`[[class, weight], ...]`, weights sum to 1), `phi`, `partner`, `label`, "
        "`class`, `image`, `key`, `pose_deg` (pitch, yaw, roll), the 5 `landmarks` (x, y in pixels), `coeffs` "
        "(the 286 coefficients by field: shape, albedo, expression, pose, lighting, noise), `generator` (name, "
        f"version), `seed`, `schema` ({schema.SCHEMA_VERSION}), and `extra` where the generator reports more |",
        "",
        "## Licence and terms",
        "",
        terms,
        "",
        "## Loading",
        "",
        "Plain webdataset:",
        "",
        "```python",
        "import webdataset as wds",
        f'ds = wds.WebDataset("DIR/{pattern}", shardshuffle=False).decode("rgb").to_tuple("{fmt}", "json")',
        "for image, meta in ds:",
        '    soft = meta["soft_label"]  # [[class, weight], ...]',
        "```",
        "",
        "Hugging Face `datasets` (local files or this repository on the Hub):",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("webdataset", data_files={{"train": "DIR/{prefix}-*.tar"}}, split="train")',
        f'ds[0]["{fmt}"], ds[0]["json"]["soft_label"]  # a PIL image; classes come back as floats here',
        "```",
        "",
        f"`wids` (random access; `pip install wids`) through `{schema.WIDS_INDEX_NAME}`:",
        "",
        "```python",
        "import wids",
        f'ds = wids.ShardListDataset("DIR/{schema.WIDS_INDEX_NAME}", cache_dir="/tmp/wids")',
        f'sample = ds[0]  # {{".{fmt}": PIL image, ".cls": int, ".json": dict, "__key__": str, ...}}',
        "```",
        "",
        "synthface's ArcFace trainer: `synth train --config mbf_cpu --data DIR --out runs/mbf`.",
        "",
    ]
    return "\n".join(lines)


# --- writing, recognising and checking ------------------------------------------------------


def write(storage: Storage, man: dict[str, Any]) -> None:
    """Write the wids index, the preview and the card for a complete build (``man`` is its final manifest)."""
    storage.write(schema.WIDS_INDEX_NAME, wids_index(man))
    storage.write(schema.PREVIEW_NAME, preview(storage, man))
    storage.write(schema.CARD_NAME, card(man).encode("utf-8"))


def ours(name: str, data: bytes) -> bool:
    """Whether ``data``, found under one of ``FILES``, was written by a synthface build."""
    if name == schema.CARD_NAME:
        return data.startswith(b"---\n") and _CARD_MARK.encode() in data[:4096]
    if name == schema.PREVIEW_NAME:
        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.format == "PNG" and im.info.get("Software") == _PNG_SOFTWARE
        except Exception:  # not an image at all
            return False
    if name == schema.WIDS_INDEX_NAME:
        try:
            doc = orjson.loads(data)
        except ValueError:
            return False
        return isinstance(doc, dict) and doc.get("__kind__") == _WIDS_KIND and doc.get("info") == _WIDS_INFO
    return False


def _foreign(storage: Storage) -> list[str]:
    present = set(storage.names())
    foreign = []
    for name in FILES:
        if name in present:
            try:
                mine = ours(name, storage.read(name))
            except OSError:  # a directory of that name, or unreadable: not ours either way
                mine = False
            if not mine:
                foreign.append(name)
    return foreign


def check_output(storage: Storage) -> None:
    """Refuse, before anything is written or deleted, an output holding a file of ours by name but not by content."""
    foreign = _foreign(storage)
    if foreign:
        raise SynthError(f"{storage.url} holds a {foreign[0]} that synth build did not write, and a build writes its "
                         f"{' / '.join(FILES)} there: move that file away or choose another --out")


def removable(storage: Storage, name: str) -> bool:
    """For ``--overwrite``: a file under one of ``FILES`` (or its temporary name) that a build wrote."""
    base = name.split(TMP_MARK, 1)[0]
    if base not in FILES:
        return False
    if TMP_MARK in name:
        return True
    try:
        return ours(base, storage.read(name))
    except OSError:  # gone, or a directory: not ours to delete
        return False


def problems(storage: Storage, man: dict[str, Any]) -> dict[str, str]:
    """For ``synth verify``: the card files a complete manifest lists, each present, ours and current."""
    listed = man.get("files") or {}
    out: dict[str, str] = {}
    expected = {schema.WIDS_INDEX_NAME: lambda: wids_index(man), schema.CARD_NAME: lambda: card(man).encode("utf-8")}
    for name in listed.values():
        try:
            data = storage.read(name)
        except FileNotFoundError:
            out[name] = "missing (re-run synth build to write it)"
            continue
        except OSError as exc:
            out[name] = f"cannot be read ({exc.strerror or type(exc).__name__})"
            continue
        if not ours(name, data):
            out[name] = "not written by synth build"
            continue
        try:
            stale = name in expected and data != expected[name]()
        except SynthError as exc:  # a manifest whose config this version cannot read
            out[name] = f"cannot be checked against {schema.MANIFEST_NAME} ({exc})"
            continue
        if stale:
            out[name] = f"does not match {schema.MANIFEST_NAME} (re-run synth build to rewrite it)"
    return out
