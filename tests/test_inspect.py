"""``synth inspect``: the summary agrees with the index, and the chart is a PNG."""

from __future__ import annotations

import io
import json

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from synthface.cli import main
from synthface.generator import layout
from synthface.pipeline import inspect, schema, writer
from synthface.pipeline.storage import Storage
from tests.conftest import SHAPES, synth

ARGS = ["--ids", "9", "--per-id", "5", "--shard-size", "10", "--generator", SHAPES, "--workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect") / "data"
    proc = synth("build", *ARGS, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_inspect_prints_what_the_index_holds(built, tmp_path):
    plot = tmp_path / "dist.png"
    proc = synth("inspect", built, "--plot", plot)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    table = pq.read_table(built / schema.INDEX_NAME)
    cls, phi = table.column("class").to_numpy(), table.column("phi").to_numpy()
    shard = np.asarray(table.column("shard").to_pylist())
    assert "samples     45\n" in out and "classes     9 (" in out and "shards      5\n" in out
    assert "generator   shapes version 1 (tests.backends:ShapesBackend)" in out
    assert "mixup 11 values 0.6..1" in out and "pose normal yaw -40..40" in out
    values, counts = np.unique(np.round(phi, 6), return_counts=True)
    for v, c in zip(values, counts):
        assert f"{v:g}".rjust(10) + f"{c:,}".rjust(11) in out
    for axis in ("yaw", "pitch", "roll"):
        col = table.column(axis).to_numpy()
        assert f"  {axis:<8}  min {col.min():.2f}  max {col.max():.2f}  mean {col.mean():.2f}" in out
    for name in sorted(set(shard.tolist())):
        n = int((shard == name).sum())
        k = np.unique(cls[shard == name]).size
        assert f"  {name}  {n:>7,} samples  {k:>7,} classes" in out
    assert "skin tone   not recorded by generator shapes" in out
    assert f"plot        {plot}" in out
    with Image.open(plot) as im:
        im.load()
        assert im.format == "PNG" and im.size == (3 * 400, 3 * 250)  # 8 panels: no skin tone here


def test_summary_numbers(built, capsys):
    s = inspect.run(str(built), None, samples=20)
    table = pq.read_table(built / schema.INDEX_NAME)
    man = json.loads((built / schema.MANIFEST_NAME).read_text())
    assert s["samples"] == table.num_rows == man["num_samples"] == 45
    assert s["classes"] == man["num_classes"] == 9 and s["shards"] == man["num_shards"] == 5
    assert sum(s["phi"].values()) == 45
    mixed = ((table.column("partner").to_numpy() >= 0) & (table.column("phi").to_numpy() < 1)).sum()
    assert s["mixed"] == mixed
    assert s["pose"]["yaw"]["max"] == pytest.approx(float(table.column("yaw").to_numpy().max()))
    assert sum(v["samples"] for v in s["per_shard"].values()) == 45
    # 20 samples at 9 per shard on average are three whole shards, spread from the first to the last.
    assert s["read"]["shards"] == ["synth-000000.tar", "synth-000002.tar", "synth-000004.tar"]
    assert s["read"]["samples"] == 25
    assert "plot" not in capsys.readouterr().out


def test_light_direction_follows_the_layout_convention():
    def record(band, value):
        sh = np.zeros((layout.SH_CHANNELS, layout.SH_BANDS))
        sh[:, band] = value
        return sh.reshape(-1)

    # Bands [1, y, z, x, ...] with Y1 = -y and Y3 = -x: see layout.py and the morphable renderer.
    az, el = inspect.light_direction(np.stack([record(1, -1.0), record(2, 1.0), record(3, -1.0), record(3, 1.0)]))
    assert el[0] == pytest.approx(90.0)  # from above
    assert az[1] == pytest.approx(0.0) and el[1] == pytest.approx(0.0)  # from the camera
    assert az[2] == pytest.approx(90.0) and az[3] == pytest.approx(-90.0)  # from the image right, left


def test_skin_tone_where_the_generator_reports_it(tmp_path):
    tar = writer.TarBuilder()
    for k, tone in enumerate((0.2, 0.4, 0.9)):
        meta = {"coeffs": {"lighting": [0.0] * layout.SIZES["lighting"]}, "extra": {"skin_tone": tone}}
        tar.add(f"00000000_{k:05d}.json", orjson.dumps(meta))
    (tmp_path / "synth-000000.tar").write_bytes(tar.getvalue())
    man = {"shards": [{"index": 0, "name": "synth-000000.tar", "count": 3}]}
    read = inspect.read_shards(Storage(str(tmp_path)), man, 100)
    assert read.names == ["synth-000000.tar"] and read.skin_tone.tolist() == [0.2, 0.4, 0.9]


def test_inspect_errors_are_one_line(tmp_path, built):
    runner = CliRunner()
    for args, needle in (([str(tmp_path / "nothing")], "does not exist"), ([str(tmp_path)], "manifest"),
                         ([str(built), "--samples", "-1"], "--samples")):
        result = runner.invoke(main, ["inspect", *args])
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code not in (0, None) and len(lines) == 1 and lines[0].startswith("error: ")
        assert needle in lines[0], lines[0]
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / schema.MANIFEST_NAME).write_bytes((built / schema.MANIFEST_NAME).read_bytes())
    result = runner.invoke(main, ["inspect", str(incomplete)])
    assert result.exit_code != 0 and "no index.parquet yet" in result.stderr


def test_chart_decodes(built):
    man = json.loads((built / schema.MANIFEST_NAME).read_text())
    table = pq.read_table(built / schema.INDEX_NAME)
    shards = inspect.read_shards(Storage(str(built)), man, 1000)
    shards.skin_tone = np.linspace(0, 1, 45)
    data = inspect.chart(man, table, shards)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.size == (3 * 400, 3 * 250)  # 9 panels with skin tone
        assert np.unique(np.asarray(im.convert("L"))).size > 2  # something is drawn
