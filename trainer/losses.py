"""Margin softmax heads (ArcFace, CosFace) that take soft targets, for identity and domain mixup.

A training target is a sparse distribution over classes: ``idx`` [B, K] class ids and ``weight``
[B, K] weights summing to 1 per row (zero-weight entries are padding). With identity mixup a
synthetic image of class i mixed with partner j has ``[(i, phi), (j, 1 - phi)]``; domain mixup
scales those by psi and adds ``(real_class, 1 - psi)``.

The loss, exactly:

    cos_c   = <e / |e|, W_c / |W_c|>                        for every class c
    t_c     = sum of the row's weights on class c           (dense soft target, sums to 1)
    z_c     = s * (t_c * margin(cos_c) + (1 - t_c) * cos_c) (each class's margin in proportion to its weight)
    loss    = mean over rows of  -sum_c t_c * log_softmax(z)_c

so loss = psi * (phi * CE(z, i) + (1 - phi) * CE(z, j)) + (1 - psi) * CE(z, real), every CE taken
over the one logit vector z. That z is exactly the reference implementation's mixed logits
``psi * (phi * arc(e, i) + (1 - phi) * arc(e, j)) + (1 - psi) * arc(e, real)``, where ``arc(e, c)``
is the ArcFace output with the margin on class c alone: the three outputs differ only at their own
target, and the mixing weights sum to 1. With phi = psi = 1 it is plain ArcFace (CosFace)
cross-entropy; a class of weight 0 (phi = 0, or padding) is a plain non-target class.

ArcFace: margin(cos) = cos(theta + m) while theta + m < pi, and cos - m * sin(m) beyond (the
insightface fallback that keeps the target logit decreasing in theta). CosFace: cos - m.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from synthface.errors import SynthError

LOSSES = ("arcface", "cosface")


def dense_targets(idx: torch.Tensor, weight: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[B, C] soft targets from sparse (idx, weight); repeated classes add up."""
    out = torch.zeros(idx.shape[0], num_classes, dtype=torch.float32, device=idx.device)
    return out.scatter_add_(1, idx.long(), weight.float())


class MarginSoftmax(nn.Module):
    """Normalised class centres W [C, D] plus a margin on the target classes of soft targets."""

    def __init__(self, embedding_size: int, num_classes: int, loss: str = "arcface", s: float = 64.0,
                 m: float | None = None):
        super().__init__()
        if loss not in LOSSES:
            raise SynthError(f"unknown loss {loss!r}: use one of {', '.join(LOSSES)}")
        if num_classes < 2:
            raise SynthError(f"a margin softmax needs at least 2 classes, got {num_classes}")
        self.loss, self.s = loss, float(s)
        self.m = float(m if m is not None else (0.5 if loss == "arcface" else 0.35))
        self.num_classes = int(num_classes)
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size).normal_(0, 0.01))
        self._cos_m, self._sin_m = math.cos(self.m), math.sin(self.m)
        self._th, self._mm = math.cos(math.pi - self.m), math.sin(math.pi - self.m) * self.m

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(embeddings.float()), F.normalize(self.weight.float())).clamp(-1.0, 1.0)

    def margin(self, cos: torch.Tensor) -> torch.Tensor:
        if self.loss == "cosface":
            return cos - self.m
        sin = torch.sqrt((1.0 - cos * cos).clamp_min(1e-6))  # finite gradient at |cos| = 1
        arc = cos * self._cos_m - sin * self._sin_m  # cos(theta + m)
        return torch.where(cos > self._th, arc, cos - self._mm)

    def logits(self, embeddings: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(embeddings)
        return self.s * torch.lerp(cos, self.margin(cos), targets)

    def forward(self, embeddings: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        targets = dense_targets(idx, weight, self.num_classes)
        logits = self.logits(embeddings, targets)
        return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
