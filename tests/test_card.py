"""A build's files for other readers: the dataset card, the preview and the wids index; and loading
the output the ways the card describes (plain webdataset is in test_build.py)."""

from __future__ import annotations

import io
import json
import re
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from synthface.pipeline import card, schema
from synthface.pipeline.config import BuildConfig
from tests.conftest import SHAPES, shard_hashes, synth, tree_hashes

ARGS = ["--ids", "10", "--per-id", "7", "--shard-size", "16", "--generator", SHAPES, "--workers", "0", "--no-progress"]
FILES = (schema.CARD_NAME, schema.PREVIEW_NAME, schema.WIDS_INDEX_NAME)


def _build(out, *extra):
    proc = synth("build", *ARGS, *extra, "--out", out)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("card") / "data"
    _build(out)
    return out


def _card_hashes(out):
    hashes = tree_hashes(out)
    return {name: hashes.get(name) for name in FILES}


def test_manifest_lists_the_card_files(built):
    man = json.loads((built / schema.MANIFEST_NAME).read_text())
    assert man["files"] == {"card": "README.md", "preview": "preview.png", "wids_index": "shardindex.json"}
    assert all((built / name).is_file() for name in man["files"].values())


def test_card_names_the_config_and_counts(built):
    text = (built / schema.CARD_NAME).read_text()
    front, body = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S).groups()
    meta = yaml.safe_load(front)
    assert meta["license"] == "other" and meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "synth-*.tar"}]}]
    assert "image-classification" in meta["task_categories"]
    man = json.loads((built / schema.MANIFEST_NAME).read_text())
    total = sum(e["bytes"] for e in man["shards"])
    for needle in ("70 aligned face images of 10 identities (7 each)", "`shapes` (version 1)", "| identities | 10 |",
                   "| images per identity | 7 |", "| seed | 0 |", "| 70 | 10 | 5 | 16 (the last 6) | ", f"{total:,} bytes",
                   "synth-{000000..000004}.tar", "shardindex.json", 'load_dataset("webdataset"', "wids.ShardListDataset",
                   "synth train", "soft_label", "MIT-licensed"):
        assert needle in body, needle
    # The recipe in the card is the build's config: it rebuilds the same dataset.
    recipe = yaml.safe_load(re.search(r"```yaml\n(.*?)```", body, re.S).group(1))
    assert BuildConfig.from_dict(recipe).to_dict() == man["config"]
    assert str(built.parent) not in text  # no output path: the card describes the data wherever it is copied


def test_recipe_in_the_card_rebuilds_the_same_bytes(built, tmp_path):
    recipe = re.search(r"```yaml\n(.*?)```", (built / schema.CARD_NAME).read_text(), re.S).group(1)
    (tmp_path / "recipe.yaml").write_text(recipe)
    again = tmp_path / "again"
    proc = synth("build", "--config", tmp_path / "recipe.yaml", "--workers", "0", "--no-progress", "--out", again)
    assert proc.returncode == 0, proc.stderr
    assert shard_hashes(again) == shard_hashes(built)
    assert _card_hashes(again) == _card_hashes(built)


def test_preview_shows_the_shards(built):
    data = (built / schema.PREVIEW_NAME).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        assert im.info["Software"] == "synthface"
        rows = card.preview_samples(BuildConfig.from_dict(json.loads((built / schema.MANIFEST_NAME).read_text())["config"]))
        assert len(rows) == 8 and all(len(images) == 6 for _, images in rows)
        assert im.size == (64 + 6 * 114, 8 * 114 - 2)
        # The top-left tile is the first sample of shard 0, exactly as decoded from the shard.
        import webdataset as wds

        first = next(iter(wds.WebDataset(str(built / "synth-000000.tar"), shardshuffle=False).decode("rgb8")))
        assert first["__key__"] == schema.sample_key(rows[0][0], 0)
        tile = im.crop((64, 0, 64 + 112, 112))
        assert (np.asarray(tile) == first["jpg"]).all()


def test_no_op_rerun_leaves_the_card_files_byte_identical(built):
    before = tree_hashes(built)
    proc = _build(built)
    assert "already complete" in proc.stdout
    assert tree_hashes(built) == before


def test_datasets_loads_every_sample(built, tmp_path, monkeypatch):
    # Local files only: nothing may reach the Hub. datasets reads these when it is first imported.
    for name, value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
                        "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets")}.items():
        monkeypatch.setenv(name, value)
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("webdataset", data_files={"train": str(built / "synth-*.tar")}, split="train",
                               cache_dir=str(tmp_path / "hf" / "datasets"))
    assert len(ds) == 70
    index = pq.read_table(built / schema.INDEX_NAME).to_pylist()
    by_key = {row["key"]: row for row in index}
    seen = set()
    for row in ds:
        meta = row["json"]
        assert row["jpg"].size == (112, 112) and row["jpg"].mode == "RGB"
        expected = by_key[row["__key__"]]
        assert meta["key"] == row["__key__"] and row["cls"] == meta["label"] == expected["label"]
        assert [[int(c), w] for c, w in meta["soft_label"]] == [[e["class"], pytest.approx(e["weight"])]
                                                                 for e in expected["soft_label"]]
        seen.add(row["__key__"])
    assert seen == set(by_key)


def test_wids_opens_the_shard_index(built, tmp_path):
    wids = pytest.importorskip("wids")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # wids warns about its own default decoder
        ds = wids.ShardListDataset(str(built / schema.WIDS_INDEX_NAME), cache_dir=str(tmp_path / "wids"))
        samples = [ds[i] for i in range(len(ds))]
    assert len(ds) == 70
    index = pq.read_table(built / schema.INDEX_NAME, columns=["key", "shard"]).to_pylist()
    assert [s["__key__"] for s in samples] == [row["key"] for row in index]  # index order is shard order
    for s, row in zip(samples, index):
        assert s[".jpg"].size == (112, 112) and s[".cls"] == s[".json"]["label"] and s[".json"]["key"] == row["key"]
        assert s["__shard__"] == str(built / row["shard"])


def test_verify_checks_the_card_files(built, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(built, out)
    assert synth("verify", out, "--no-progress").returncode == 0
    (out / schema.CARD_NAME).write_text((out / schema.CARD_NAME).read_text().replace("10 identities", "11 identities"))
    (out / schema.WIDS_INDEX_NAME).unlink()
    proc = synth("verify", out, "--no-progress")
    assert proc.returncode != 0
    assert "BAD README.md: does not match manifest.json" in proc.stderr
    assert "BAD shardindex.json: missing" in proc.stderr
    # A build puts them right again.
    _build(out)
    assert synth("verify", out, "--no-progress").returncode == 0
    assert _card_hashes(out) == _card_hashes(built)


def test_overwrite_replaces_the_card_files(built, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(built, out)
    (out / "README.md.tmp-0123456789ab").write_bytes(b"partial")
    (out / "notes.txt").write_text("keep me")
    _build(out, "--seed", "3", "--overwrite")
    card_text = (out / schema.CARD_NAME).read_text()
    assert "| seed | 3 |" in card_text and "| seed | 0 |" not in card_text
    assert (out / "notes.txt").read_text() == "keep me"
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    assert _card_hashes(out)[schema.PREVIEW_NAME] != _card_hashes(built)[schema.PREVIEW_NAME]
    assert synth("verify", out, "--no-progress").returncode == 0


@pytest.mark.parametrize("name", FILES)
def test_a_foreign_file_of_the_same_name_is_never_replaced(tmp_path, name):
    out = tmp_path / "data"
    out.mkdir()
    (out / name).write_bytes(b"the user's own file\n")
    for extra in ((), ("--overwrite",)):
        proc = synth("build", *ARGS, *extra, "--out", out)
        assert proc.returncode != 0 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert f"holds a {name} that synth build did not write" in proc.stderr
        assert sorted(p.name for p in out.iterdir()) == [name]
        assert (out / name).read_bytes() == b"the user's own file\n"


def _manifest(generator: str) -> dict:
    cfg = BuildConfig(ids=3, per_id=2, generator=generator, shard_size=4).to_dict()
    return {"config": cfg, "generator": {"name": generator, "version": "7"}, "num_samples": 6, "num_shards": 2,
            "pattern": "synth-{000000..000001}.tar", "image_format": "jpg", "versions": {"synthface": "0.1.0"},
            "shards": [{"index": 0, "name": "synth-000000.tar", "count": 4, "bytes": 100, "sha256": "0"},
                       {"index": 1, "name": "synth-000001.tar", "count": 2, "bytes": 50, "sha256": "1"}]}


def test_licence_and_terms_follow_the_generator():
    morphable = card.card(_manifest("morphable"))
    assert yaml.safe_load(morphable.split("---\n")[1])["license"] == "mit"
    assert "no third-party terms" in morphable and "CC BY-NC" not in morphable
    disco = card.card(_manifest("discofacegan"))
    meta = yaml.safe_load(disco.split("---\n")[1])
    assert meta["license"] == "other" and meta["license_name"] == "discofacegan-weights"
    assert "DiscoFaceGAN's pretrained weights" in disco and "the user's responsibility" in disco
    assert "StyleGAN" in disco and "CC BY-NC 4.0" in disco
    # Fewer identities and images than the preview's 8 x 6: what there is.
    rows = card.preview_samples(BuildConfig.from_dict(_manifest("morphable")["config"]))
    assert len(rows) == 3 and all(len(images) == 2 for _, images in rows)
    assert card.ours(schema.CARD_NAME, morphable.encode()) and not card.ours(schema.CARD_NAME, b"---\n# mine\n")


def test_counts_of_a_one_shard_build():
    man = _manifest("morphable")
    man["config"]["shard_size"], man["num_shards"] = 1000, 1
    man["shards"] = [{"index": 0, "name": "synth-000000.tar", "count": 6, "bytes": 150, "sha256": "0"}]
    text = card.card(man)
    assert "written as 1 WebDataset shard by synthface 0.1.0" in text
    assert "| 6 | 3 | 1 | 6 (shard size 1,000) | 150 bytes |" in text


def test_size_categories():
    assert [card.size_category(n) for n in (1, 999, 1000, 50_000, 500_000, 10**6)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M"]
