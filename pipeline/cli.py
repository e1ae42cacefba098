"""``synth build``, ``synth verify`` and ``synth pairs`` (a held-out verification set rendered like a build).

Every option defaults to "not given" here so that a recipe's values stand unless a flag
overrides them; the real defaults live in ``BuildConfig`` and ``SamplingConfig`` and are quoted
in the help. Click's own usage errors are turned into ``SynthError`` so that every bad input
ends as one ``error: ...`` line.
"""

from __future__ import annotations

from typing import Any

import click

from synthface.cli_options import generator_option, generator_overrides, sampling_options, sampling_overrides
from synthface.errors import SynthError
from synthface.options import key_values

from . import schema
from .config import BuildConfig, recipe_names, resolve
from .manifest import read as read_manifest
from .storage import Storage

_DEF = BuildConfig(ids=2, per_id=1)


class _Command(click.Command):
    """A command whose usage errors (bad flag values, missing arguments) are one-line SynthErrors."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise SynthError(f"{exc.format_message()} (see synth {self.name} --help)") from None


@click.command(cls=_Command)
@click.option("--ids", type=int, help="Number of identities (classes). Required unless the recipe sets it.")
@click.option("--per-id", type=int, help="Images per identity. Required unless the recipe sets it.")
@click.option("--out", required=True, help="Output directory or fsspec URL (s3://bucket/path, gs://...).")
@click.option("--config", "recipe", metavar="RECIPE",
              help=f"YAML recipe file, or a shipped recipe name ({', '.join(recipe_names())}). Flags override its values.")
@click.option("--generator", help=f"Generator name or module:Class import path. [default: {_DEF.generator}]")
@generator_option()
@click.option("--seed", type=int, help=f"Dataset seed: same config and seed give byte-identical shards. [default: {_DEF.seed}]")
@click.option("--image-size", help=f"Output size in pixels, e.g. 112 or 112x96 (HxW). [default: {_DEF.image_size[0]}]")
@click.option("--format", "fmt", help=f"Image format: {'|'.join(schema.IMAGE_FORMATS)}. [default: {_DEF.format}]")
@click.option("--quality", type=int, help=f"JPEG/WebP quality 1-100 (ignored for png). [default: {_DEF.quality}]")
@click.option("--shard-size", type=int, help=f"Images per shard. [default: {_DEF.shard_size}]")
@click.option("--prefix", help=f"Shard name prefix: PREFIX-000000.tar ... [default: {_DEF.prefix}]")
@sampling_options()
@click.option("--workers", type=int, help="Worker actors. [default: one per CPU of the Ray cluster, or per GPU slot "
              "with --gpus-per-worker; 0 runs in this process without Ray]")
@click.option("--gpus-per-worker", type=float, default=0.0, show_default=True, help="GPUs each worker asks Ray for (fractions allowed).")
@click.option("--address", help="Join an existing Ray cluster (e.g. auto or HOST:6379). [default: start a local one]")
@click.option("--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE",
              help="fsspec storage option for the output (repeatable), e.g. client_kwargs={endpoint_url: http://...}.")
@click.option("--overwrite", is_flag=True, help="Delete a previous build's files in --out (only shards, stats, manifest "
              "and index) and build again. Without it, the same command resumes and a different config is refused.")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Images rendered per generator call.")
@click.option("--max-attempts", type=int, default=3, show_default=True, help="Attempts per shard before the build gives up on it.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def build(ids, per_id, out, recipe, generator, generator_options, seed, image_size, fmt, quality, shard_size, prefix,
          workers, gpus_per_worker, address, storage_options, overwrite, batch_size, max_attempts, progress, **sampling):
    """Render a dataset of IDS x PER-ID images into WebDataset shards, with manifest.json and index.parquet.

    \b
    Examples:
      synth build --ids 1000 --per-id 50 --out data/syn_1k_50
      synth build --config syn_10k_50_im --out s3://bucket/syn_10k_50_im
      synth build --config smoke --out /tmp/smoke --workers 2
    Re-running the same command resumes an interrupted build.
    """
    from .build import RunOptions, run

    opts = generator_overrides(generator_options)
    cfg = resolve(
        recipe,
        {"ids": ids, "per_id": per_id, "seed": seed, "generator": generator, "image_size": image_size, "format": fmt,
         "quality": quality, "shard_size": shard_size, "prefix": prefix},
        sampling_overrides(sampling),
        generator_options=opts or None,
    )
    run(cfg, RunOptions(out=out, workers=workers, gpus_per_worker=gpus_per_worker, address=address, overwrite=overwrite,
                        storage_options=key_values(storage_options, "--storage-option"), batch_size=batch_size,
                        max_attempts=max_attempts, progress=progress))


@click.command(cls=_Command)
@click.argument("out")
@click.option("--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE",
              help="fsspec storage option (repeatable), as for synth build.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def verify(out, storage_options, progress):
    """Re-read every shard in OUT against its manifest; name every bad shard and exit non-zero if any."""
    from .verify import run

    run(out, key_values(storage_options, "--storage-option"), progress=progress)


@click.command("pairs", cls=_Command)
@click.option("--out", required=True, help="Output directory (LFW layout: Name/Name_0001.jpg + pairs.txt).")
@click.option("--ids", type=int, required=True, help="Held-out identities to render.")
@click.option("--images-per-id", type=int, required=True, help="Images per identity.")
@click.option("--class-offset", type=int, default=10**6, show_default=True,
              help="First class number; must be above every class used in training.")
@click.option("--same", type=int, default=3000, show_default=True, help="Same-identity pairs.")
@click.option("--different", type=int, default=3000, show_default=True, help="Different-identity pairs.")
@click.option("--folds", type=int, default=10, show_default=True)
@click.option("--like", "like", help="Take generator, seed and sampling options from this dataset's manifest.json.")
@click.option("--recipe", help="Take them from a build recipe (name or YAML path) instead.")
@click.option("--generator", help="Generator backend (default morphable).")
@generator_option()
@click.option("--image-size", help="112 or HxW.")
@click.option("--seed", type=int, help="The build's seed (identities depend on it).")
@click.option("--quality", type=int, help="JPEG quality.")
@sampling_options(with_mixup=False)
@click.option("--device", default="cpu", show_default=True, help="Device the generator renders on.")
def pairs(out, ids, images_per_id, class_offset, same, different, folds, like, recipe, generator, generator_options,
          image_size, seed, quality, device, **sampling):
    """Render a held-out synthetic verification set (identities never used in training) in LFW layout.

    \b
    Example:
      synth pairs --out data/pairs --ids 600 --images-per-id 10 --like data/syn_1k_20
      synth eval runs/mbf/backbone.ts --pairs data/pairs
    """
    from .pairs import build_pairs

    if like and recipe:
        raise SynthError("--like and --recipe exclude each other: pick one")
    base: dict[str, Any] = {}
    if like:
        manifest = read_manifest(Storage(like), remedy="pass the options (or --recipe) instead")
        if manifest is None or not isinstance(manifest.get("config"), dict):
            raise SynthError(f"{like} has no manifest.json with a build config; pass the options (or --recipe) instead")
        base = dict(manifest["config"])
    overrides = {"ids": ids, "per_id": images_per_id, "generator": generator, "image_size": image_size,
                 "seed": seed, "quality": quality}
    # Held-out identities are never mixed: mixup is forced off whatever the build used.
    cfg = resolve(base or recipe, overrides, {**sampling_overrides(sampling), "mixup": "off"},
                  generator_overrides(generator_options))
    res = build_pairs(out, cfg, ids=ids, per_id=images_per_id, offset=class_offset, same=same,
                      different=different, folds=folds, device=device)
    click.echo(f"wrote {res['images']} images of {res['ids']} held-out identities (classes "
               f"{res['classes'][0]}..{res['classes'][1] - 1}) and {res['same']} same + {res['different']} "
               f"different pairs in {folds} folds to {out}/pairs.txt")


COMMANDS = [build, verify, pairs]
