"""DiscoFaceGAN (Deng et al., CVPR 2020) in PyTorch: the paper's generator, from the official weights.

The backend classes load on first use, so `synth` can list its commands without importing torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DiscoFaceGANBackend", "DiscoFaceGANPrior"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import backend

        return getattr(backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
