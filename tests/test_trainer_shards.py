"""Reading synthface shards for training: patterns, manifests, splitting, labels, bad data.

Also home of the small hand-made datasets the other trainer tests use: real WebDataset tars written
with ``webdataset.TarWriter`` and ``synthface.pipeline.schema.sample_metadata``, with images in which each
class is a fixed low-frequency pattern (so a tiny network can tell classes apart quickly).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import simplejpeg
import webdataset as wds

from synthface.errors import SynthError
from synthface.generator import layout
from synthface.pipeline import schema
from synthface.trainer import data


def class_pattern(c: int, size=(112, 112)) -> np.ndarray:
    rng = np.random.default_rng([4242, c])
    low = rng.uniform(0, 255, size=(7, 7, 3))
    return np.kron(low, np.ones((size[0] // 7, size[1] // 7, 1)))


def render(c: int, k: int, partner: int = -1, phi: float = 1.0, size=(112, 112)) -> np.ndarray:
    img = class_pattern(c, size)
    if partner >= 0:
        img = phi * img + (1 - phi) * class_pattern(partner, size)
    rng = np.random.default_rng([77, c, k])
    img = img * rng.uniform(0.8, 1.2) + rng.normal(0, 12, size=img.shape)
    img = np.roll(img, rng.integers(-4, 5, size=2), axis=(0, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_dataset(root, classes: int, per_class: int, shards: int = 2, mixup: bool = True, offset: int = 0,
                  seed: int = 0, size=(112, 112)) -> str:
    """A synthface-format dataset directory (shards + manifest.json); returns its path."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    samples = [(c, k) for c in range(offset, offset + classes) for k in range(per_class)]
    order = rng.permutation(len(samples))
    names, counts = [], []
    for s in range(shards):
        name = schema.shard_name("synth", s)
        mine = [samples[i] for i in order[s::shards]]
        with wds.TarWriter(os.path.join(root, name)) as sink:
            for c, k in mine:
                if mixup and rng.random() < 0.5:
                    j = int(rng.integers(offset, offset + classes - 1))
                    j += j >= c
                    phi = float(rng.choice([0.6, 0.8, 0.9]))
                    soft = [[c, phi], [j, round(1 - phi, 6)]]
                else:
                    j, phi, soft = -1, 1.0, [[c, 1.0]]
                key = schema.sample_key(c, k)
                meta = schema.sample_metadata(
                    key=key, cls=c, image=k, label=c, soft_label=soft, phi=phi, partner=j,
                    coeffs=np.zeros(layout.TOTAL, np.float32), landmarks=np.zeros((5, 2)),
                    generator={"name": "test-pattern"}, seed=seed)
                jpg = simplejpeg.encode_jpeg(render(c, k, j, phi, size), quality=90, colorspace="RGB")
                sink.write({"__key__": key, "jpg": jpg, "cls": str(c).encode(), "json": schema.dumps(meta)})
        names.append(name)
        counts.append(len(mine))
    manifest = {"num_classes": offset + classes, "pattern": schema.shard_pattern("synth", shards),
                "shards": [{"name": n, "count": k} for n, k in zip(names, counts)]}
    with open(os.path.join(root, schema.MANIFEST_NAME), "w") as f:
        json.dump(manifest, f)
    return str(root)


def write_real_folder(root, ids: int, per_id: int, offset: int = 500, size=(128, 128)) -> str:
    for c in range(ids):
        d = os.path.join(root, f"person_{c:03d}")
        os.makedirs(d, exist_ok=True)
        for k in range(per_id):
            img = render(offset + c, k, size=size)  # 128 by default, not 112: exercises the resize path
            with open(os.path.join(d, f"{k:04d}.jpg"), "wb") as f:
                f.write(simplejpeg.encode_jpeg(img, quality=90, colorspace="RGB"))
    return str(root)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("syn"), classes=6, per_class=5, shards=3)


def _first(stream):
    return next(iter(stream))


def test_resolve_by_directory_pattern_and_glob(dataset):
    by_dir = data.resolve_shards(dataset)
    assert (by_dir.num_classes, by_dir.num_samples, len(by_dir.urls)) == (6, 30, 3)
    by_pattern = data.resolve_shards(os.path.join(dataset, "synth-{000000..000002}.tar"))
    assert by_pattern.urls == by_dir.urls and by_pattern.num_samples == 30 and by_pattern.num_classes == 6
    by_glob = data.resolve_shards(os.path.join(dataset, "synth-*.tar"))
    assert by_glob.urls == by_dir.urls
    # A subset of the shards without the manifest's counts: counted by reading them.
    one = data.resolve_shards(os.path.join(dataset, "synth-000001.tar"))
    assert one.num_samples == 10 and one.num_classes <= 6


def test_urls_go_through_fsspec(dataset):
    """Any fsspec URL reads like a local path (s3:// and http(s):// take the same code path)."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for name in sorted(os.listdir(dataset)):
        with open(os.path.join(dataset, name), "rb") as f:
            fs.pipe(f"/trainer-test/{name}", f.read())
    src = data.resolve_shards("memory://trainer-test")
    assert src.urls[0] == "memory://trainer-test/synth-000000.tar" and src.num_samples == 30
    batch = _first(data.TrainStream(src, None, batch_size=30, image_size=(112, 112), shuffle_buffer=1))
    assert "error" not in batch and batch["syn"].shape[0] == 30
    fs.rm("/trainer-test", recursive=True)


def test_batches_carry_images_and_soft_labels(dataset):
    src = data.resolve_shards(dataset)
    stream = data.TrainStream(src, None, batch_size=8, image_size=(112, 112), shuffle_buffer=10)
    batch = _first(stream)
    assert "error" not in batch, batch.get("error")
    assert batch["syn"].shape == (8, 112, 112, 3) and batch["syn"].dtype == np.uint8
    assert np.allclose(batch["syn_w"].sum(1), 1.0, atol=1e-5)
    assert batch["syn_idx"].max() < 6
    mixed = batch["syn_w"][:, 1] > 0
    assert (batch["syn_idx"][mixed, 0] != batch["syn_idx"][mixed, 1]).all()


def test_one_pass_covers_every_sample_once_across_readers(dataset, monkeypatch):
    """Split by node x worker: the readers of one pass together see each sample exactly once."""
    src = data.resolve_shards(dataset)
    for readers in (2, 5):  # 5 readers > 3 shards: falls back to splitting samples
        seen = []
        for reader in range(readers):
            monkeypatch.setattr(data, "reader_info", lambda r=reader, n=readers: (r, n))
            stream = data.TrainStream(src, None, batch_size=1, image_size=(112, 112), shuffle_buffer=1, flip=False)
            it = iter(stream)
            # 3 shards of 10: with 2 readers, reader 0 gets 2 shards and reader 1 one shard.
            share = len(range(reader, 3, readers)) * 10 if readers <= 3 else len(range(reader, 30, readers))
            for _ in range(share):
                b = next(it)
                seen.append((int(b["syn_idx"][0, 0]), int(b["syn"][0].astype(np.int64).sum())))
        assert len(seen) == 30 and len(set(seen)) == 30


def test_same_seed_same_stream_and_flip_mirrors(dataset):
    src = data.resolve_shards(dataset)
    a = _first(data.TrainStream(src, None, batch_size=6, image_size=(112, 112), seed=3, shuffle_buffer=20))
    b = _first(data.TrainStream(src, None, batch_size=6, image_size=(112, 112), seed=3, shuffle_buffer=20))
    assert np.array_equal(a["syn"], b["syn"]) and np.array_equal(a["syn_idx"], b["syn_idx"])
    c = _first(data.TrainStream(src, None, batch_size=6, image_size=(112, 112), seed=3, shuffle_buffer=20, flip=False))
    assert np.array_equal(a["syn_idx"], c["syn_idx"])
    flipped = [not np.array_equal(x, y) for x, y in zip(a["syn"], c["syn"])]
    assert any(flipped)
    for x, y, f in zip(a["syn"], c["syn"], flipped):
        assert np.array_equal(x, y[:, ::-1] if f else y)


def test_missing_shards_are_a_one_line_error(tmp_path):
    with pytest.raises(SynthError, match="no shard matches"):
        data.resolve_shards(str(tmp_path / "nothing-{000000..000003}.tar"))
    with pytest.raises(SynthError, match="no manifest.json"):
        data.resolve_shards(str(tmp_path))


def test_malformed_json_is_a_one_line_error(tmp_path):
    path = tmp_path / "synth-000000.tar"
    with wds.TarWriter(str(path)) as sink:
        jpg = simplejpeg.encode_jpeg(render(0, 0), colorspace="RGB")
        sink.write({"__key__": "00000000_00000", "jpg": jpg, "cls": b"0", "json": b"{not json"})
    src = data.ShardSource(str(path), [str(path)], num_classes=2, num_samples=1)
    batch = _first(data.TrainStream(src, None, batch_size=1, image_size=(112, 112)))
    assert "malformed metadata" in batch["error"] and "\n" not in batch["error"]
    with pytest.raises(SynthError, match="malformed metadata"):
        data.resolve_shards(str(path))  # counting the samples reads the JSON too


def test_empty_real_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "notes.txt").write_text("no images here")
    with pytest.raises(SynthError, match="has no images"):
        data.resolve_real(str(tmp_path))


def test_real_folder_labels_follow_the_synthetic_ones(dataset, tmp_path):
    real = data.resolve_real(write_real_folder(tmp_path / "real", ids=3, per_id=4))
    assert real.num_classes == 3 and real.num_samples == 12
    src = data.resolve_shards(dataset)
    stream = data.TrainStream(src, real, batch_size=12, image_size=(112, 112), real_offset=src.num_classes)
    batch = _first(stream)
    assert batch["real"].shape == (12, 112, 112, 3)
    assert sorted(set(batch["real_idx"].tolist())) == [6, 7, 8]
    assert batch["syn_idx"].max() < 6


def test_real_images_are_decoded_once_and_the_cache_changes_nothing(tmp_path, monkeypatch):
    real = data.resolve_real(write_real_folder(tmp_path / "real", ids=3, per_id=4))
    calls = []
    decode = data.imaging.decode
    monkeypatch.setattr(data.imaging, "decode", lambda raw: calls.append(1) or decode(raw))

    def three_passes(cache_mb):
        calls.clear()
        it = iter(data.TrainStream(None, real, batch_size=12, image_size=(112, 112), real_cache_mb=cache_mb))
        batches = [next(it) for _ in range(3)]
        return np.stack([b["real"] for b in batches]), np.stack([b["real_idx"] for b in batches]), len(calls)

    cached, idx_cached, decodes_cached = three_passes(1024)
    plain, idx_plain, decodes_plain = three_passes(0)
    room_for_five = 5 * 112 * 112 * 3 / 2**20
    partial, _, decodes_partial = three_passes(room_for_five)
    assert (decodes_cached, decodes_plain, decodes_partial) == (12, 36, 12 + 2 * 7)
    assert np.array_equal(cached, plain) and np.array_equal(idx_cached, idx_plain) and np.array_equal(partial, plain)
    # A fresh order every pass, and the batches differ (flips, order) while the set stays the same.
    assert not np.array_equal(idx_cached[0], idx_cached[1])
    assert sorted(idx_cached[0].tolist()) == sorted(idx_cached[1].tolist())
    with pytest.raises(SynthError, match="real-image cache"):
        data.TrainStream(None, real, batch_size=12, image_size=(112, 112), real_cache_mb=-1)


from synthface.generator.registry import Backend, RenderResult

_TEMPLATE = np.array([[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]], np.float32)


class PatternBackend(Backend):
    """A stand-in generator for fast training tests: the identity coefficients set a 7x7 colour
    pattern (so identity mixup mixes patterns), pose shifts it, lighting scales its brightness and
    the noise coefficients seed pixel noise. Deterministic per record."""

    name = "test-pattern"
    version = "1"
    _proj = np.random.default_rng(123).standard_normal((layout.IDENTITY_SIZE, 7 * 7 * 3)).astype(np.float32)

    def render(self, coeffs: np.ndarray) -> RenderResult:
        from PIL import Image

        h, w = self.image_size
        f = layout.split(np.asarray(coeffs, dtype=np.float32))
        ident = np.asarray(coeffs, np.float32)[:, layout.IDENTITY]
        low = np.clip(128 + 75 * (ident @ self._proj) / np.sqrt(layout.IDENTITY_SIZE), 0, 255).reshape(-1, 7, 7, 3)
        images = np.empty((len(coeffs), h, w, 3), np.uint8)
        for b in range(len(coeffs)):
            img = np.asarray(Image.fromarray(low[b].astype(np.uint8)).resize((w, h), Image.BILINEAR), np.float32)
            pitch, yaw, _ = f["pose"][b]
            img = np.roll(img, (round(8 * float(pitch)), round(8 * float(yaw))), axis=(0, 1))
            img *= 1.0 + 0.5 * np.tanh(f["lighting"][b, 0])
            seed = np.frombuffer(f["noise"][b, :2].tobytes(), np.uint32)
            img += np.random.default_rng(seed).normal(0, 3, img.shape)
            images[b] = np.clip(img, 0, 255).astype(np.uint8)
        marks = np.repeat((_TEMPLATE * np.array([w / 112, h / 112], np.float32))[None], len(coeffs), 0)
        return RenderResult(images=images, landmarks=marks, meta=[{} for _ in range(len(coeffs))])


def test_real_data_from_shards_uses_cls_and_the_offset(dataset):
    real = data.resolve_real(dataset)  # a dataset dir with a manifest is read as shards
    assert isinstance(real, data.ShardSource) and real.num_classes == 6
    stream = data.TrainStream(None, real, batch_size=30, image_size=(112, 112), real_offset=100, shuffle_buffer=1)
    batch = _first(stream)
    assert sorted(set(batch["real_idx"].tolist())) == list(range(100, 106)) and "syn" not in batch
