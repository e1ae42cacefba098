"""LFW-format pair lists: ``pairs.txt`` plus an image directory in LFW naming (``Name/Name_0001.jpg``).

pairs.txt: an optional header line ``FOLDS PAIRS_PER_FOLD_PER_KIND`` (``10 300``), then one pair per
line, ``Name n1 n2`` for a same pair or ``Name1 n1 Name2 n2`` for a different pair.
"""

from __future__ import annotations

import os

import numpy as np

from synthface.errors import SynthError
from synthface.pipeline.schema import PAIRS_NAME, pairs_image

from . import imaging
from .evaluate import PairSet

_EXTS = (".jpg", ".png", ".jpeg", ".webp")


def _find(root: str, stem: str) -> str | None:
    for ext in _EXTS:
        path = os.path.join(root, stem + ext)
        if os.path.isfile(path):
            return path
    return None


def read_pairs(spec: str, images: str | None = None, folds: int = 10) -> PairSet:
    path = os.path.join(spec, PAIRS_NAME) if os.path.isdir(spec) else spec
    if not os.path.isfile(path):
        raise SynthError(f"no pairs file at {path}: give a pairs.txt (LFW format), a directory holding one, or a .bin")
    root = images or os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        lines = [line.split() for line in f if line.strip()]
    if lines and len(lines[0]) == 2 and all(t.isdigit() for t in lines[0]):
        folds = int(lines[0][0])
        lines = lines[1:]
    paths: dict[str, int] = {}
    first, second, issame = [], [], []

    def index(name: str, number: str, line_no: int) -> int:
        try:
            stem = pairs_image(name, int(number))
        except ValueError:
            raise SynthError(f"{path} line {line_no}: image number {number!r} is not an integer") from None
        if stem not in paths:
            if _find(root, stem) is None:
                raise SynthError(f"{path} line {line_no} names {stem}.jpg, which is not in {root}; "
                                 "check the image directory (--images)")
            paths[stem] = len(paths)
        return paths[stem]

    for n, tokens in enumerate(lines, start=2):
        if len(tokens) == 3:
            a, b, same = index(tokens[0], tokens[1], n), index(tokens[0], tokens[2], n), True
        elif len(tokens) == 4:
            a, b, same = index(tokens[0], tokens[1], n), index(tokens[2], tokens[3], n), False
        else:
            raise SynthError(f"{path} line {n}: expected 'Name n1 n2' or 'Name1 n1 Name2 n2', got {' '.join(tokens)!r}")
        first.append(a)
        second.append(b)
        issame.append(same)
    if not issame:
        raise SynthError(f"{path} lists no pairs")
    files = [_find(root, stem) for stem in paths]

    def load(i: int) -> np.ndarray:
        with open(files[i], "rb") as f:
            return imaging.decode(f.read())

    return PairSet(os.path.basename(os.path.dirname(os.path.abspath(path))) or path, len(files), load,
                   np.array(first), np.array(second), np.array(issame, dtype=bool), folds)
