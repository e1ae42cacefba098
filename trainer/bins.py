"""insightface verification sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin`` ...) without mxnet.

A ``.bin`` is a pickle of ``(images, issame)``: a list of encoded image bytes, two per pair in
order, and one bool per pair. Most were written by Python 2, so strings are read as bytes
(``encoding='bytes'``). Unpickling runs code named in the file, so only the few harmless names
such files need are allowed; anything else is refused.
"""

from __future__ import annotations

import pickle

import numpy as np

from synthface.errors import SynthError

from . import imaging
from .evaluate import PairSet

_ALLOWED = {
    ("_codecs", "encode"),
    ("builtins", "bytes"), ("builtins", "bytearray"), ("builtins", "list"), ("builtins", "tuple"),
    ("builtins", "bool"), ("__builtin__", "bytes"), ("__builtin__", "bytearray"), ("__builtin__", "list"),
    ("__builtin__", "tuple"), ("__builtin__", "bool"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_bin(path: str, folds: int = 10) -> PairSet:
    try:
        with open(path, "rb") as f:
            data = _Unpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise SynthError(f"verification set {path} does not exist") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise SynthError(f"{path} is not an insightface .bin verification set ({exc})") from None
    try:
        images, issame = data
        images = [bytes(b) if not isinstance(b, bytes) else b for b in images]
        issame = np.asarray([bool(v) for v in issame], dtype=bool)
    except (TypeError, ValueError):
        raise SynthError(f"{path} does not hold (images, issame): not an insightface .bin verification set") from None
    if len(images) != 2 * len(issame):
        raise SynthError(f"{path} has {len(images)} images for {len(issame)} pairs (expected two per pair)")

    def load(i: int) -> np.ndarray:
        try:
            return imaging.decode(images[i])
        except (OSError, ValueError) as exc:
            raise SynthError(f"{path}: image {i} cannot be decoded ({exc})") from None

    n = len(issame)
    return PairSet(path.rsplit("/", 1)[-1], len(images), load, np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2),
                   issame, folds)


def write_bin(path: str, images: list[bytes], issame: list[bool]) -> None:
    """Write a set in the same format (protocol 2, as the Python 2 originals), e.g. to share a pairs set."""
    with open(path, "wb") as f:
        pickle.dump((list(images), [bool(v) for v in issame]), f, protocol=2)
