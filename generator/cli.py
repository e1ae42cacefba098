"""Generator commands: ``synth preview``; also the sampling options a build shares with it."""

from __future__ import annotations

from typing import Any

import click

from synthface.errors import SynthError

from .sampler import FACTOR_MODES, POSE_DISTRIBUTIONS, SamplingConfig


def _parse_range(ctx, param, value):
    if value is None:
        return None
    parts = [p for p in str(value).replace(" ", "").split(",") if p]
    if len(parts) != 2:
        raise click.BadParameter(f"{value!r}: give LOW,HIGH in degrees, e.g. -40,40")
    try:
        return (float(parts[0]), float(parts[1]))
    except ValueError:
        raise click.BadParameter(f"{value!r}: LOW and HIGH must be numbers (degrees)") from None


def sampling_options(func):
    """Click options for every field of ``SamplingConfig`` (defaults come from the dataclass)."""
    d = SamplingConfig()
    opts = [
        click.option("--factors", type=click.Choice(FACTOR_MODES), default=d.factors, show_default=True,
                     help="which factor varies within an identity ('all', or only expression/lighting/pose)"),
        click.option("--mixup", default="paper", show_default=True,
                     help="identity mixup ratios: 'paper' (0.6..1.0, 11 steps), 'reference', 'off', "
                          "a list '0.7,0.8,1.0' or LOW:HIGH:STEPS"),
        click.option("--yaw-range", callback=_parse_range, default=None, metavar="LOW,HIGH",
                     help=f"yaw range in degrees [default: {d.yaw_range[0]:g},{d.yaw_range[1]:g}]"),
        click.option("--pitch-range", callback=_parse_range, default=None, metavar="LOW,HIGH",
                     help=f"pitch range in degrees [default: {d.pitch_range[0]:g},{d.pitch_range[1]:g}]"),
        click.option("--roll-range", callback=_parse_range, default=None, metavar="LOW,HIGH",
                     help=f"roll range in degrees [default: {d.roll_range[0]:g},{d.roll_range[1]:g}]"),
        click.option("--pose-distribution", type=click.Choice(POSE_DISTRIBUTIONS), default=d.pose_distribution,
                     show_default=True, help="how poses fill their ranges"),
        click.option("--expression-strength", type=float, default=d.expression_strength, show_default=True,
                     help="scale of expression coefficients (0 = neutral faces)"),
        click.option("--lighting-variety", type=float, default=d.lighting_variety, show_default=True,
                     help="scale of lighting variation (0 = soft white ambient light)"),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def sampling_config(kwargs: dict[str, Any]) -> SamplingConfig:
    """Pop the sampling options from a command's kwargs into a validated ``SamplingConfig``."""
    data = {}
    for name in ("factors", "mixup", "yaw_range", "pitch_range", "roll_range", "pose_distribution",
                 "expression_strength", "lighting_variety"):
        value = kwargs.pop(name, None)
        if value is not None:
            data[name] = value
    return SamplingConfig.from_dict(data)


@click.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write")
@click.option("--ids", type=int, default=6, show_default=True, help="identities (rows)")
@click.option("--per-id", type=int, default=8, show_default=True, help="images per identity (columns)")
@click.option("--seed", type=int, default=0, show_default=True, help="dataset seed (same as a build's)")
@click.option("--generator", default="morphable", show_default=True, help="generator backend")
@click.option("--image-size", default="112", show_default=True, help="output size: 112, 256 or HxW such as 112x96")
@sampling_options
def preview(out, ids, per_id, seed, generator, image_size, **kwargs):
    """Write a contact sheet of what a build with these options will produce.

    Rows are identities and columns images of each identity, sampled exactly as a build with the
    same seed and options would; the last row morphs identity 0 into identity 1 (phi 1 -> 0).
    """
    from .preview import contact_sheet, write_sheet

    if ids < 1 or per_id < 1:
        raise SynthError(f"--ids and --per-id must be positive, got {ids} and {per_id}")
    cfg = sampling_config(kwargs)
    click.echo(f"rendering {ids} identities x {per_id} images + a morph row with '{generator}' at {image_size} ...",
               err=True)

    def progress(done, total):
        click.echo(f"  row {done}/{total}", err=True)

    sheet = contact_sheet(cfg, ids=ids, per_id=per_id, seed=seed, generator=generator, image_size=image_size,
                          progress=progress)
    path = write_sheet(sheet, out)
    click.echo(f"wrote {path} ({sheet.width}x{sheet.height} px)")


COMMANDS = [preview]
