"""Schedules of mixing ratios, such as identity mixup's phi and domain mixup's psi.

A schedule is a finite set of ratios in [0, 1] that a ratio is drawn from uniformly. Every kind is
written the same ways: a list of numbers, ``'a,b,c'``, ``'LOW:HIGH:STEPS'``, a mapping
``{low, high, steps}``, or a name from the kind's own presets (where ``None`` means off). Each kind
(a ``ScheduleKind``) brings its presets and the words its errors use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthface.errors import SynthError


def linspace(low: float, high: float, steps: int) -> tuple[float, ...]:
    """``steps`` evenly spaced ratios from ``low`` to ``high``, rounded to 6 decimals as every schedule is."""
    return tuple(round(float(v), 6) for v in np.linspace(low, high, steps))


@dataclass(frozen=True)
class ScheduleKind:
    """One kind of schedule: its presets, and how its errors name it.

    ``name`` names the schedule (``"mixup schedule"``), ``ratio`` one value of it (``"mixup ratio"``),
    ``meaning`` says what a ratio weighs (the reason it must lie in [0, 1]) and ``example`` is a
    LOW:HIGH:STEPS range.
    """

    name: str
    ratio: str
    meaning: str
    example: str
    presets: dict[str, tuple[float, ...] | None] = field(default_factory=dict)

    def parse(self, value: Any) -> tuple[float, ...] | None:
        """The ratios of ``value``, or None for off (None, False or a preset that is off)."""
        if value is None or value is False:
            return None
        if value is True:
            value = "true"
        if isinstance(value, str):
            text = value.strip().lower()
            if text in self.presets:
                return self.presets[text]
            if ":" in text:  # low:high:steps
                parts = text.split(":")
                if len(parts) != 3:
                    raise SynthError(f"{self.name} {value!r}: use LOW:HIGH:STEPS, e.g. {self.example}")
                value = {"low": parts[0], "high": parts[1], "steps": parts[2]}
            else:
                value = [v for v in text.replace(" ", "").split(",") if v]
        if isinstance(value, dict):
            value = self._range(value)
        try:
            ratios = tuple(round(float(v), 6) for v in value)
        except (TypeError, ValueError):
            raise SynthError(f"{self.name} {value!r}: ratios must be numbers between 0 and 1") from None
        if not ratios:
            raise SynthError(f"{self.name} is empty: give at least one ratio, or 'off'")
        bad = [r for r in ratios if not (0.0 <= r <= 1.0) or math.isnan(r)]
        if bad:
            raise SynthError(f"{self.ratio} {bad[0]} is outside [0, 1]: {self.meaning}")
        return ratios

    def _range(self, value: dict) -> list[float]:
        if set(value) - {"low", "high", "steps"} or len(value) != 3:
            raise SynthError(f"{self.name} {value!r}: a range needs exactly low, high and steps")
        try:
            low, high, steps = float(value["low"]), float(value["high"]), int(value["steps"])
        except (TypeError, ValueError):
            raise SynthError(f"{self.name} {value!r}: low and high must be numbers and steps an integer") from None
        if steps < 1:
            raise SynthError(f"{self.name} {value!r}: steps must be at least 1")
        return np.linspace(low, high, steps).tolist()


OFF_NAMES = ("off", "none", "false", "no")
