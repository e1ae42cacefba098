"""Training data: synthface WebDataset shards, plus real faces for domain mixup.

Where the data comes from:

* synthetic shards, given as a brace pattern (``data/syn/synth-{000000..000007}.tar``), a glob, a
  dataset directory holding ``manifest.json`` (the ``synth build`` output), or ``http(s)://`` /
  ``s3://`` (any fsspec URL) versions of those;
* real faces, as an identity-per-folder directory (``DIR/NAME/*.jpg``) or as shards whose ``.cls``
  member is the class. Real classes are numbered after the synthetic ones (``real_offset``).

How it is read (the open_clip recipe): every (node, worker) pair is one *reader*. Per pass over the
data the shard list is shuffled with a seed all readers share and split between them, so each pass
is a partition of the shards; with fewer shards than readers, every reader reads all shards and
keeps every ``readers``-th sample instead. ``resampled`` draws shards with replacement instead, the
choice for multi-node runs over many shards. Tar members come from ``tario`` (a lean reader; see
there why) and are grouped into samples by webdataset's ``group_by_keys``; samples go through
webdataset's shuffle buffer, are decoded (simplejpeg) straight into one preallocated uint8 batch,
mirrored on the way in when flipped, and normalised later on the training device. Streams never
end: the training loop takes a fixed number of batches per epoch, so every rank takes the same
number of steps.

A loader worker that meets bad data does not raise (PyTorch would wrap the error in a multi-line
traceback); it yields ``{"error": message}`` and the training loop raises that as a ``SynthError``.
"""

from __future__ import annotations

import os
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import braceexpand
import fsspec
import numpy as np
import orjson
import torch
import webdataset as wds
from webdataset import tariterators

from synthface.errors import SynthError
from synthface.pipeline import schema

from . import imaging, tario
from .augment import AugmentConfig, Augmenter
from .config import check_real_cache_mb

SYN_TARGETS = 2  # identity mixup: (i, phi), (j, 1 - phi)


def _is_url(path: str) -> bool:
    return "://" in path


def _join(root: str, name: str) -> str:
    return name if _is_url(name) or os.path.isabs(name) else root.rstrip("/") + "/" + name


@dataclass
class ShardSource:
    """A resolved list of shards, with what the manifest says about them."""

    spec: str
    urls: list[str]
    num_classes: int | None = None
    num_samples: int | None = None
    manifest: dict[str, Any] | None = field(default=None, repr=False)


def _read_manifest(root: str) -> dict[str, Any] | None:
    path = _join(root, schema.MANIFEST_NAME)
    fs, p = fsspec.core.url_to_fs(path)
    if not fs.exists(p):
        return None
    try:
        with fs.open(p, "rb") as f:
            return orjson.loads(f.read())
    except orjson.JSONDecodeError as exc:
        raise SynthError(f"{path} is not valid JSON ({exc}); rebuild the dataset or point at the shards") from None


def _manifest_shards(root: str, manifest: dict[str, Any]) -> tuple[list[str], int | None]:
    """Shard URLs and total sample count from a manifest (``pipeline.manifest.make`` writes it)."""
    entries = manifest.get("shards")
    if isinstance(entries, list) and entries:
        try:
            urls = [_join(root, entry["name"]) for entry in entries]
            total = sum(int(entry["count"]) for entry in entries)
        except (KeyError, TypeError, ValueError):
            raise SynthError(f"{root}/manifest.json has a malformed shard list; rebuild the dataset") from None
        return urls, total
    if manifest.get("pattern"):
        total = manifest.get("num_samples")
        return [_join(root, u) for u in braceexpand.braceexpand(manifest["pattern"])], (int(total) if total else None)
    raise SynthError(f"{root}/manifest.json lists no shards and no pattern; rebuild the dataset")


def _scan(urls: list[str]) -> tuple[int, int]:
    """(samples, classes) by reading the shards; for shard sets that come without a manifest."""
    keys, top = set(), -1
    for url in urls:
        with fsspec.open(url, "rb") as f, tarfile.open(fileobj=f, mode="r|*") as tar:
            for info in tar:
                key, _, ext = info.name.rsplit("/", 1)[-1].partition(".")
                if ext == "json":
                    keys.add((url, key))
                    data = tar.extractfile(info).read()
                    try:
                        meta = orjson.loads(data)
                    except orjson.JSONDecodeError as exc:
                        raise SynthError(f"sample {key} in {url} has malformed metadata ({exc}); rebuild that shard") from None
                    soft = meta.get("soft_label") if isinstance(meta, dict) else None
                    if soft:
                        top = max([top] + [int(c) for c, _ in soft])
                elif ext == "cls":
                    keys.add((url, key))
                    top = max(top, int(tar.extractfile(info).read()))
    return len(keys), top + 1


def resolve_shards(spec: str, num_classes: int | None = None, num_samples: int | None = None) -> ShardSource:
    """Shard URLs, class count and sample count for a pattern, glob, dataset directory or URL."""
    spec = str(spec)
    root = spec.rstrip("/")
    manifest = None
    if not spec.endswith(".tar") and "{" not in spec and "*" not in spec:
        manifest = _read_manifest(root)
        if manifest is None:
            raise SynthError(
                f"{spec} has no {schema.MANIFEST_NAME}: give a dataset directory built by 'synth build', "
                "or a shard pattern such as DIR/synth-{000000..000009}.tar"
            )
        urls, total = _manifest_shards(root, manifest)
    else:
        if "*" in spec:
            fs, p = fsspec.core.url_to_fs(spec)
            found = sorted(fs.glob(p))
            urls = [fs.unstrip_protocol(u) if _is_url(spec) else u for u in found]
        else:
            urls = list(braceexpand.braceexpand(spec))
        total = None
        parent = urls[0].rsplit("/", 1)[0] if urls and "/" in urls[0] else "."
        try:
            manifest = _read_manifest(parent)
        except SynthError:
            manifest = None
        if manifest is not None:
            listed, listed_total = _manifest_shards(parent, manifest)
            if set(urls) == set(listed):
                total = listed_total
    if not urls:
        raise SynthError(f"no shard matches {spec}: check the path and the brace pattern")
    if not _is_url(urls[0]):
        missing = [u for u in urls if not os.path.isfile(u)]
        if len(missing) == len(urls):
            raise SynthError(f"no shard matches {spec}: none of its {len(urls)} files exist; check the path")
        if missing:
            raise SynthError(f"shard {missing[0]} of {spec} does not exist ({len(missing)} of {len(urls)} missing)")
    classes = num_classes or (manifest or {}).get("num_classes")
    total = num_samples or total
    if not classes or not total:
        scanned_total, scanned_classes = _scan(urls)
        classes, total = classes or scanned_classes, total or scanned_total
    if not total:
        raise SynthError(f"the shards of {spec} hold no samples; rebuild them")
    return ShardSource(spec, urls, int(classes), int(total), manifest)


@dataclass
class RealFolder:
    """Identity-per-folder images: ``root/NAME/*.jpg``; classes in sorted folder-name order."""

    root: str
    classes: list[str]
    items: list[tuple[str, int]]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_samples(self) -> int:
        return len(self.items)

    @classmethod
    def scan(cls, root: str) -> RealFolder:
        base = Path(root)
        if not base.is_dir():
            raise SynthError(f"real image folder {root} does not exist or is not a directory")
        classes, items = [], []
        for sub in sorted(p for p in base.iterdir() if p.is_dir()):
            files = sorted(f for f in sub.iterdir() if f.suffix.lower() in imaging.IMAGE_EXTENSIONS)
            if files:
                items.extend((str(f), len(classes)) for f in files)
                classes.append(sub.name)
        if not items:
            raise SynthError(
                f"real image folder {root} has no images: expected one sub-folder per identity, "
                f"e.g. {root}/NAME/0001.jpg ({', '.join(imaging.IMAGE_EXTENSIONS)})"
            )
        return cls(str(root), classes, items)


def resolve_real(spec: str, num_classes: int | None = None) -> RealFolder | ShardSource:
    """A real-face source: an identity-per-folder directory, or shards (pattern or manifest dir)."""
    spec = str(spec)
    if os.path.isdir(spec) and not os.path.exists(os.path.join(spec, schema.MANIFEST_NAME)):
        return RealFolder.scan(spec)
    return resolve_shards(spec, num_classes=num_classes)


def _parse_json(data: bytes, url: str, key: str) -> dict[str, Any]:
    try:
        return schema.parse_metadata(data)
    except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise SynthError(f"sample {key} in {url} has malformed metadata ({exc}); rebuild that shard") from None


def _members(urls: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Tar members of each shard in turn (local files unbuffered by fsspec, anything else through it)."""
    for url in urls:
        try:
            if _is_url(url):
                stream = fsspec.open(url, "rb").open()
            else:
                stream = open(url, "rb", buffering=1 << 20)  # noqa: SIM115 - closed below, after the last member
        except ImportError as exc:
            raise SynthError(f"cannot open shard {url}: {exc.name or exc} is needed for that protocol; pip install it") from None
        except (OSError, ValueError) as exc:
            raise SynthError(f"cannot open shard {url}: {exc}") from None
        try:
            yield from tario.members(stream, url)
            yield {}  # end of shard: group_by_keys closes the last sample even if the next shard repeats its key
        except tario.TarError as exc:
            raise SynthError(f"shard {exc}; rebuild it") from None
        finally:
            stream.close()


def _reraise(exc: Exception) -> bool:
    if isinstance(exc, SynthError):
        raise exc
    raise SynthError(f"cannot read shard data: {' '.join(str(exc).split())}") from None


def reader_info() -> tuple[int, int]:
    """(this reader, number of readers) over nodes x loader workers."""
    rank, world, worker, workers = wds.utils.pytorch_worker_info()
    return rank * workers + worker, world * workers


class TrainStream(torch.utils.data.IterableDataset):
    """Endless batches: ``{"syn", "syn_idx", "syn_w"}`` and/or ``{"real", "real_idx"}`` (uint8 NHWC)."""

    def __init__(self, syn: ShardSource | None, real: RealFolder | ShardSource | None, *, batch_size: int,
                 image_size: tuple[int, int], seed: int = 0, shuffle_buffer: int = 2000, resampled: bool = False,
                 flip: bool = True, crop: float = 1.0, real_offset: int = 0, start_pass: int = 0,
                 real_cache_mb: float = 1024.0, augment: AugmentConfig | None = None, augment_real: bool = False):
        super().__init__()
        if syn is None and real is None:
            raise SynthError("nothing to train on: give synthetic shards, real images, or both")
        self.syn, self.real = syn, real
        self.batch_size, self.image_size = int(batch_size), tuple(image_size)
        self.seed, self.shuffle_buffer, self.resampled = int(seed), int(shuffle_buffer), bool(resampled)
        self.flip, self.crop, self.real_offset, self.start_pass = flip, crop, int(real_offset), int(start_pass)
        self.real_cache_bytes = int(check_real_cache_mb(real_cache_mb) * 2**20)
        self.augment = augment if augment is not None and augment.active else None
        self.augment_real = bool(augment_real)

    # -- shards -------------------------------------------------------------------------------
    def _shard_urls(self, urls: list[str], reader: int, readers: int, tag: int):
        """Endless shard URLs for this reader, and whether it must sub-sample (too few shards)."""
        own = random.Random((self.seed, tag, reader, self.start_pass).__hash__())
        if self.resampled:
            def resampled():
                while True:
                    yield own.choice(urls)
            return resampled(), False
        split_samples = len(urls) < readers

        def passes():
            p = self.start_pass
            while True:
                order = list(urls)
                random.Random(self.seed * 1_000_003 + p * 7919 + tag).shuffle(order)  # same for all readers
                yield from (order if split_samples else order[reader::readers])
                p += 1
        return passes(), split_samples

    def _shard_samples(self, src: ShardSource, reader: int, readers: int, tag: int) -> Iterator[dict]:
        urls, split = self._shard_urls(src.urls, reader, readers, tag)
        files = _members(urls)
        samples = tariterators.group_by_keys(files, handler=_reraise)
        if split:
            samples = (s for n, s in enumerate(samples) if n % readers == reader)
        rng = random.Random((self.seed, tag, reader, self.start_pass, 5).__hash__())
        return wds.shuffle(self.shuffle_buffer, initial=min(self.shuffle_buffer, 100), rng=rng)(samples)

    def _image(self, sample: dict, url: str) -> np.ndarray:
        data = sample.get("jpg") or sample.get("png") or sample.get("webp") or sample.get("jpeg")
        if data is None:
            raise SynthError(f"sample {sample.get('__key__')} in {url} has no image member (.jpg, .png or .webp)")
        try:
            image = imaging.decode(data)
        except (OSError, ValueError) as exc:
            raise SynthError(f"sample {sample.get('__key__')} in {url} has an undecodable image ({exc})") from None
        if image.shape[:2] != self.image_size or self.crop < 1.0:
            image = imaging.fit(image, self.image_size, self.crop)
        return image

    def _batches(self, samples: Iterator, label_fn, k: int, flip_rng: np.random.Generator,
                 augment: Augmenter | None = None, aug_rng: np.random.Generator | None = None):
        """Fill one preallocated uint8 batch per step, each image augmented first when ``augment`` is
        given; a flipped image is copied in mirrored, which costs little over the copy every image
        needs anyway. (Through torch: numpy copies a mirrored HxWx3 uint8 view byte by byte, ~90 us
        at 112x112 against ~17 us.)"""
        b, (h, w) = self.batch_size, self.image_size
        while True:
            images = np.empty((b, h, w, 3), dtype=np.uint8)
            images_t = torch.from_numpy(images)
            idx = np.zeros((b, k), dtype=np.int64)
            weight = np.zeros((b, k), dtype=np.float32)
            flips = flip_rng.random(b) < 0.5 if self.flip else np.zeros(b, dtype=bool)
            n = 0
            for sample in samples:
                image = self._image(sample, sample.get("__url__", "?")) if isinstance(sample, dict) else sample[0]
                if augment is not None:
                    image = augment(image, aug_rng)
                if flips[n]:
                    images_t[n] = torch.from_numpy(image).flip(1)
                else:
                    images[n] = image
                label_fn(sample, idx[n], weight[n])
                n += 1
                if n == b:
                    break
            if n < b:
                raise SynthError("a data stream ended early: the shards (or real images) hold no readable samples")
            yield images, idx, weight

    def _syn_label(self, num_classes: int):
        def label(sample, idx, weight):
            url, key = sample.get("__url__", "?"), sample.get("__key__", "?")
            if "json" not in sample:
                raise SynthError(f"sample {key} in {url} has no .json metadata; is this a synthface build?")
            soft = _parse_json(sample["json"], url, key)["soft_label"]
            if not 1 <= len(soft) <= SYN_TARGETS:
                raise SynthError(f"sample {key} in {url} has a soft label of {len(soft)} classes (1 or 2 expected)")
            for n, (c, w) in enumerate(soft):
                if not 0 <= int(c) < num_classes:
                    raise SynthError(f"sample {key} in {url} has class {c} outside the dataset's {num_classes}")
                idx[n], weight[n] = int(c), float(w)
            if len(soft) == 1:
                idx[1] = idx[0]
        return label

    def _real_label(self, num_classes: int):
        def label(sample, idx, weight):
            if isinstance(sample, tuple):
                c = sample[1]
            else:
                url, key = sample.get("__url__", "?"), sample.get("__key__", "?")
                try:
                    c = int(sample["cls"]) if "cls" in sample else int(orjson.loads(sample["json"])["label"])
                except (KeyError, ValueError, TypeError):
                    raise SynthError(f"sample {key} in {url} has no readable class (.cls, or 'label' in .json)") from None
                if not 0 <= c < num_classes:
                    raise SynthError(f"sample {key} in {url} has class {c} outside the real set's {num_classes}")
            idx[0], weight[0] = self.real_offset + c, 1.0
        return label

    def _folder_samples(self, folder: RealFolder, reader: int, readers: int) -> Iterator[tuple[np.ndarray, int]]:
        """Real images in a fresh order every pass. Domain mixup's real set is small (SynFace mixes in
        a few thousand images) and every training image needs one, so each reader keeps the images it
        has decoded and fitted, up to ``real_cache_mb``: after the first pass a real image costs a
        copy instead of a JPEG decode, which would otherwise halve the loader's rate."""
        cache: dict[int, np.ndarray] = {}
        room = self.real_cache_bytes
        p = self.start_pass
        while True:
            order = np.random.default_rng([self.seed, 99, p]).permutation(len(folder.items))
            for n in order[reader::readers] if len(order) >= readers else order:
                path, c = folder.items[n]
                image = cache.get(n)
                if image is None:
                    try:
                        with open(path, "rb") as f:
                            image = imaging.decode(f.read())
                    except (OSError, ValueError) as exc:
                        raise SynthError(f"cannot read real image {path} ({exc})") from None
                    if image.shape[:2] != self.image_size or self.crop < 1.0:
                        image = imaging.fit(image, self.image_size, self.crop)
                    if image.nbytes <= room:
                        cache[n] = image
                        room -= image.nbytes
                yield image, c
            p += 1

    def __iter__(self):
        try:
            reader, readers = reader_info()
            flip_rng = np.random.default_rng([self.seed, reader, self.start_pass, 7])
            aug_rng = np.random.default_rng([self.seed, reader, self.start_pass, 13])
            augment = Augmenter(self.augment, self.seed) if self.augment is not None else None
            syn = real = None
            if self.syn is not None:
                samples = self._shard_samples(self.syn, reader, readers, 1)
                syn = self._batches(samples, self._syn_label(self.syn.num_classes), SYN_TARGETS, flip_rng,
                                    augment, aug_rng)
            if self.real is not None:
                if isinstance(self.real, RealFolder):
                    samples = self._folder_samples(self.real, reader, readers)
                else:
                    samples = self._shard_samples(self.real, reader, readers, 2)
                real = self._batches(samples, self._real_label(self.real.num_classes), 1, flip_rng,
                                     augment if self.augment_real else None, aug_rng)
            while True:
                out = {}
                if syn is not None:
                    out["syn"], out["syn_idx"], out["syn_w"] = next(syn)
                if real is not None:
                    images, idx, _ = next(real)
                    out["real"], out["real_idx"] = images, idx[:, 0]
                yield out
        except SynthError as exc:
            yield {"error": str(exc)}


def make_loader(stream: TrainStream, workers: int, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=workers, pin_memory=pin_memory,
        persistent_workers=False, prefetch_factor=4 if workers > 0 else None,
    )
