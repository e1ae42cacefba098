"""Click options that the generation commands share: ``synth build``, ``synth preview``, ``synth pairs``.

The sampling flags (one per field of ``SamplingConfig``) and ``--generator-option KEY=VALUE`` are
declared here once, so the three commands take the same flags with the same help and report a bad
value with the same one-line error. Each flag defaults to "not given" (None) so that a recipe's
value stands unless the flag overrides it; the real defaults live in ``SamplingConfig`` and are
quoted in the help.
"""

from __future__ import annotations

from typing import Any

import click

from synthface.generator.sampler import FACTOR_MODES, POSE_DISTRIBUTIONS, SamplingConfig
from synthface.options import degree_range, key_values

_DEFAULTS = SamplingConfig()
RANGE_FLAGS = {"yaw_range": "--yaw-range", "pitch_range": "--pitch-range", "roll_range": "--roll-range"}


def _deg(r: tuple[float, float]) -> str:
    return f"{r[0]:g},{r[1]:g}"


def _apply(opts):
    def decorate(func):
        for opt in reversed(opts):
            func = opt(func)
        return func

    return decorate


def sampling_options(with_mixup: bool = True):
    """Click options for every field of ``SamplingConfig``.

    Values are checked by ``SamplingConfig`` itself, so every command reports a bad value alike.
    """
    d = _DEFAULTS
    opts = [
        click.option("--factors", metavar="MODE", help=f"Which factors vary per image: {'|'.join(FACTOR_MODES)} "
                     f"(the others stay fixed per identity). [default: {d.factors}]"),
        click.option("--yaw-range", metavar="LOW,HIGH", help=f"Yaw range in degrees. [default: {_deg(d.yaw_range)}]"),
        click.option("--pitch-range", metavar="LOW,HIGH", help=f"Pitch range in degrees. [default: {_deg(d.pitch_range)}]"),
        click.option("--roll-range", metavar="LOW,HIGH", help=f"Roll range in degrees. [default: {_deg(d.roll_range)}]"),
        click.option("--pose-distribution", metavar="NAME", help=f"Pose draw within the ranges: "
                     f"{'|'.join(POSE_DISTRIBUTIONS)}. [default: {d.pose_distribution}]"),
        click.option("--expression-strength", type=float,
                     help=f"Scale of expressions, 0 = neutral. [default: {d.expression_strength:g}]"),
        click.option("--lighting-variety", type=float,
                     help=f"Scale of lighting variation, 0 = flat ambient. [default: {d.lighting_variety:g}]"),
    ]
    if with_mixup:
        opts.insert(0, click.option("--mixup", help="Identity mixup schedule: off | paper (phi in linspace(0.6,1,11)) | "
                                    "reference (0,0.05,...,1) | LOW:HIGH:STEPS | comma list of ratios. [default: paper]"))
    return _apply(opts)


def sampling_overrides(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the sampling flags from a command's kwargs: {field: value or None (not given)}."""
    out = {name: kwargs.pop(name, None) for name in ("mixup", "factors", "pose_distribution",
                                                      "expression_strength", "lighting_variety")}
    for name, flag in RANGE_FLAGS.items():
        out[name] = degree_range(kwargs.pop(name, None), flag)
    return out


def generator_option():
    """``--generator-option KEY=VALUE`` (repeatable), into the command's ``generator_options`` tuple."""
    return click.option("--generator-option", "generator_options", multiple=True, metavar="KEY=VALUE",
                        help="A generator option (repeatable); values are parsed as YAML.")


def generator_overrides(items: tuple[str, ...]) -> dict[str, Any]:
    """The ``--generator-option`` flags as {option: value}."""
    return key_values(items, "--generator-option")
