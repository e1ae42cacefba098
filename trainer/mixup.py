"""Domain mixup: blend a synthetic batch with a real one, and the soft targets that go with it.

Per batch one psi is drawn from the schedule; the network sees ``psi * X_syn + (1 - psi) * X_real``
(pixel space, after normalisation: mixing normalised tensors equals normalising mixed pixels,
since normalisation is affine) and learns the targets

    (i, psi * phi), (j, psi * (1 - phi)), (real_class, 1 - psi)

which the margin head turns into psi * (phi * CE_i + (1 - phi) * CE_j) + (1 - psi) * CE_real
(see ``losses``). With psi = 1 this is synthetic-only training with identity mixup.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from synthface.schedule import OFF_NAMES, ScheduleKind, linspace

REFERENCE_PSI = "reference"  # {0, 0.05, ..., 1.0}: the reference implementation's schedule
PSI = ScheduleKind(
    name="domain-mixup (psi) schedule",
    ratio="psi",
    meaning="psi is the weight of the synthetic image in the mix",
    example="0:1:21",
    presets={**dict.fromkeys(OFF_NAMES), REFERENCE_PSI: linspace(0.0, 1.0, 21)},
)


def psi_schedule(value: Any = REFERENCE_PSI) -> tuple[float, ...]:
    """Parse a psi schedule: 'reference', a list, 'a,b,c' or 'LOW:HIGH:STEPS'; 'off' means psi = 1."""
    values = PSI.parse(value)
    return (1.0,) if values is None else values


class DomainMixer:
    """Draws psi per batch from a seeded generator (so a run is reproducible) and mixes."""

    def __init__(self, schedule: tuple[float, ...], seed: int = 0):
        self.schedule = np.asarray(schedule, dtype=np.float64)
        self.rng = np.random.default_rng([int(seed), 31])

    def draw(self) -> float:
        return float(self.schedule[self.rng.integers(len(self.schedule))])

    @staticmethod
    def mix(x_syn: torch.Tensor, x_real: torch.Tensor, psi: float) -> torch.Tensor:
        if psi >= 1.0:
            return x_syn
        if psi <= 0.0:
            return x_real
        return torch.lerp(x_real, x_syn, psi)  # psi * syn + (1 - psi) * real

    @staticmethod
    def targets(syn_idx: torch.Tensor, syn_w: torch.Tensor, real_idx: torch.Tensor, psi: float):
        """[B, 3] class ids and weights: the synthetic soft label scaled by psi, the real class by 1 - psi."""
        idx = torch.cat([syn_idx, real_idx.view(-1, 1)], dim=1)
        w = torch.cat([syn_w * psi, torch.full_like(syn_w[:, :1], 1.0 - psi)], dim=1)
        return idx, w
