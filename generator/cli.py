"""Generator commands: ``synth preview``."""

from __future__ import annotations

import click

from synthface.cli_options import generator_option, generator_overrides, sampling_options, sampling_overrides
from synthface.errors import SynthError

from .sampler import SamplingConfig


@click.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write")
@click.option("--ids", type=int, default=6, show_default=True, help="identities (rows)")
@click.option("--per-id", type=int, default=8, show_default=True, help="images per identity (columns)")
@click.option("--seed", type=int, default=0, show_default=True, help="dataset seed (same as a build's)")
@click.option("--generator", default="morphable", show_default=True, help="generator backend")
@generator_option()
@click.option("--image-size", default="112", show_default=True, help="output size: 112, 256 or HxW such as 112x96")
@sampling_options()
def preview(out, ids, per_id, seed, generator, generator_options, image_size, **kwargs):
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
                          options=generator_overrides(generator_options), progress=progress)
    path = write_sheet(sheet, out)
    click.echo(f"wrote {path} ({sheet.width}x{sheet.height} px)")


COMMANDS = [preview]
