"""``--generator-option`` reaches both the backend and its prior, in every command that renders."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from PIL import Image

from synthface.cli import main

from tests.conftest import ROOT  # noqa: F401  (puts the repository root, and so tests.backends, on sys.path)

LEVEL = "tests.backends:LevelBackend"
OPTIONS = ["--generator", LEVEL, "--generator-option", "level=40", "--generator-option", "offset=60"]


def _run(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result


def test_preview_passes_generator_options(tmp_path):
    out = tmp_path / "sheet.png"
    _run(["preview", "--out", str(out), "--ids", "2", "--per-id", "2", *OPTIONS])
    with Image.open(out) as img:
        assert np.unique(np.asarray(img)).tolist() == [100]  # 40 from the prior + 60 from the backend
    plain = tmp_path / "plain.png"
    _run(["preview", "--out", str(plain), "--ids", "2", "--per-id", "2", "--generator", LEVEL])
    with Image.open(plain) as img:
        assert np.unique(np.asarray(img)).tolist() == [0]
    bad = CliRunner().invoke(main, ["preview", "--out", str(out), "--generator", LEVEL, "--generator-option", "tone=1"])
    assert bad.exit_code != 0 and "no option 'tone'" in bad.output


def test_pairs_passes_generator_options(tmp_path):
    out = tmp_path / "pairs"
    _run(["pairs", "--out", str(out), "--ids", "4", "--images-per-id", "2", "--same", "2", "--different", "2",
          "--folds", "2", *OPTIONS])
    images = sorted(out.rglob("*.jpg"))
    assert len(images) == 8
    for path in images:
        with Image.open(path) as img:
            assert np.abs(np.asarray(img, dtype=np.int16) - 100).max() <= 1  # JPEG of a flat grey
