"""Parsing of flag values that several commands share, into one-line ``SynthError``s."""

from __future__ import annotations

from typing import Any

import numpy as np
import yaml

from synthface.errors import SynthError


def reject_unknown(given, known, what: str, kinds: str = "options") -> None:
    """One-line error naming the first (sorted) key of ``given`` that is not in ``known``."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise SynthError(f"unknown {what} {unknown[0]!r}: known {kinds} are {', '.join(sorted(known))}")


def key_values(items: tuple[str, ...], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` flags (repeatable) into a dict; values are parsed as YAML (numbers, lists, mappings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SynthError(f"{flag} {item!r}: use KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value) if value else ""
    return out


def degree_range(value: str | None, flag: str) -> tuple[float, float] | None:
    """``LOW,HIGH`` (or ``LOW:HIGH``) in degrees; ``None`` means the flag was not given."""
    if value is None:
        return None
    parts = str(value).replace(" ", "").replace(":", ",").split(",")
    if len(parts) != 2:
        raise SynthError(f"{flag} {value!r}: give LOW,HIGH in degrees, e.g. -40,40")
    try:
        return (float(parts[0]), float(parts[1]))
    except ValueError:
        raise SynthError(f"{flag} {value!r}: LOW and HIGH must be numbers of degrees") from None


def normalise_size(size: Any) -> tuple[int, int]:
    """(height, width) from 112, "112", "112x96" or (112, 96)."""
    if isinstance(size, str):
        parts = size.lower().replace("*", "x").split("x")
        try:
            size = tuple(int(p) for p in parts) if len(parts) == 2 else int(parts[0])
        except ValueError:
            raise SynthError(f"image size {size!r} is not a number: use e.g. 112 or 112x96") from None
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise SynthError(f"image size {size!r} is not valid: use e.g. 112 or 112x96") from None
    if not (32 <= h <= 1024 and 32 <= w <= 1024):
        raise SynthError(f"image size {h}x{w} is outside 32..1024 pixels per side")
    return (h, w)
