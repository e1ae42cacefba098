"""Face-embedding backbones by name: 112x112 (or 112x96) aligned RGB in, 512-d embedding out.

Names follow insightface's arcface_torch (``r18``, ``r50``, ``mbf``) so configs read the same.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from synthface.errors import SynthError

from .iresnet import iresnet18, iresnet50
from .mobilefacenet import mobilefacenet

NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "r18": iresnet18,
    "r50": iresnet50,
    "mbf": mobilefacenet,
}


def build(name: str, image_size: tuple[int, int] = (112, 112), embedding_size: int = 512) -> nn.Module:
    factory = NETWORKS.get(name)
    if factory is None:
        raise SynthError(f"unknown network {name!r}: use one of {', '.join(NETWORKS)}")
    h, w = image_size
    if h % 16 or w % 16:
        raise SynthError(f"input size {h}x{w} must be a multiple of 16 on each side (e.g. 112x112 or 112x96)")
    return factory(image_size=(h, w), embedding_size=embedding_size)
