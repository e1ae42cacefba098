"""Generator commands: ``synth preview``; also the sampling options a build shares with it."""

from __future__ import annotations

from typing import Any

import click

from synthface.errors import SynthError
from synthface.options import degree_range

from .sampler import FACTOR_MODES, POSE_DISTRIBUTIONS, SamplingConfig

_DEFAULTS = SamplingConfig()
RANGE_FLAGS = {"yaw_range": "--yaw-range", "pitch_range": "--pitch-range", "roll_range": "--roll-range"}


def _deg(r: tuple[float, float]) -> str:
    return f"{r[0]:g},{r[1]:g}"


def sampling_options(with_mixup: bool = True):
    """Click options for every field of ``SamplingConfig``, shared by build, preview and pairs.

    Each defaults to "not given" (None) so a recipe's value stands unless the flag overrides it;
    the real defaults live in ``SamplingConfig`` and are quoted in the help. Values are checked by
    ``SamplingConfig`` itself, so every command reports a bad value with the same one-line error.
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

    def decorate(func):
        for opt in reversed(opts):
            func = opt(func)
        return func

    return decorate


def sampling_overrides(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the sampling flags from a command's kwargs: {field: value or None (not given)}."""
    out = {name: kwargs.pop(name, None) for name in ("mixup", "factors", "pose_distribution",
                                                      "expression_strength", "lighting_variety")}
    for name, flag in RANGE_FLAGS.items():
        out[name] = degree_range(kwargs.pop(name, None), flag)
    return out


@click.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write")
@click.option("--ids", type=int, default=6, show_default=True, help="identities (rows)")
@click.option("--per-id", type=int, default=8, show_default=True, help="images per identity (columns)")
@click.option("--seed", type=int, default=0, show_default=True, help="dataset seed (same as a build's)")
@click.option("--generator", default="morphable", show_default=True, help="generator backend")
@click.option("--image-size", default="112", show_default=True, help="output size: 112, 256 or HxW such as 112x96")
@sampling_options()
def preview(out, ids, per_id, seed, generator, image_size, **kwargs):
    """Write a contact sheet of what a build with these options will produce.

    Rows are identities and columns images of each identity, sampled exactly as a build with the
    same seed and options would; the last row morphs identity 0 into identity 1 (phi 1 -> 0).
    """
    from .preview import contact_sheet, write_sheet

    if ids < 1 or per_id < 1:
        raise SynthError(f"--ids and --per-id must be positive, got {ids} and {per_id}")
    overrides = sampling_overrides(kwargs)
    cfg = SamplingConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    click.echo(f"rendering {ids} identities x {per_id} images + a morph row with '{generator}' at {image_size} ...",
               err=True)

    def progress(done, total):
        click.echo(f"  row {done}/{total}", err=True)

    sheet = contact_sheet(cfg, ids=ids, per_id=per_id, seed=seed, generator=generator, image_size=image_size,
                          progress=progress)
    path = write_sheet(sheet, out)
    click.echo(f"wrote {path} ({sheet.width}x{sheet.height} px)")


COMMANDS = [preview]
