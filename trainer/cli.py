"""``synth train`` and ``synth eval``."""

from __future__ import annotations

import json

import click

from synthface.errors import SynthError


def _csv_floats(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value.replace(":", ",").split(",") if v.strip()]
    except ValueError:
        raise SynthError(f"{value!r} must be comma-separated numbers, e.g. 24,30,36") from None


@click.command("train")
@click.option("--config", "config_name", help="Config name from trainer/configs (synface_r50, r18, mbf_cpu, tiny) or a YAML path.")
@click.option("--data", help="Synthetic shards: dataset directory, brace pattern, glob, or http(s)/s3 URL.")
@click.option("--real", help="Real faces for domain mixup: identity-per-folder directory (NAME/*.jpg), or shards.")
@click.option("--no-dm", "no_dm", is_flag=True, help="Train on synthetic data only (ignore --real).")
@click.option("--real-only", is_flag=True, help="Train on the real data only (the baseline).")
@click.option("--out", help="Run directory: log.csv, tb/, checkpoint.pt, backbone.{pth,ts,onnx}.")
@click.option("--network", type=click.Choice(["r18", "r50", "mbf"]), help="Backbone (default r50).")
@click.option("--image-size", help="Input size, 112 or 112x96 (HxW).")
@click.option("--loss", type=click.Choice(["arcface", "cosface"]))
@click.option("--scale", type=float, help="Logit scale s (default 64).")
@click.option("--margin", type=float, help="Margin m (default 0.5 ArcFace, 0.35 CosFace).")
@click.option("--psi", help="Domain-mixup psi schedule: reference (0,0.05..1), a list 0.5,0.8,1, or LOW:HIGH:STEPS.")
@click.option("--batch-size", type=int)
@click.option("--epochs", type=int)
@click.option("--lr", type=float)
@click.option("--schedule", type=click.Choice(["step", "cosine"]))
@click.option("--lr-steps", help="Epochs at which step decay multiplies the lr by 0.1, e.g. 24,30,36.")
@click.option("--warmup-epochs", type=float)
@click.option("--weight-decay", type=float)
@click.option("--workers", type=int, help="Loader worker processes.")
@click.option("--shuffle-buffer", type=int, help="Sample shuffle buffer size per worker.")
@click.option("--real-cache-mb", type=float,
              help="Decoded real images (--real DIR) kept in memory per loader worker, in MB [default: 1024; 0: off].")
@click.option("--resampled", is_flag=True, default=None, help="Draw shards with replacement (multi-node, many shards).")
@click.option("--no-flip", is_flag=True, help="No random horizontal flips.")
@click.option("--augment", help="Augmentation of synthetic images: light (camera effects), medium or strong (also "
                                "warps and occluders), or off; see trainer/augment.py [default: light].")
@click.option("--no-augment", is_flag=True, help="Same as --augment off.")
@click.option("--augment-real/--no-augment-real", default=None, help="Augment the real images of domain mixup too.")
@click.option("--amp/--no-amp", default=None, help="Mixed precision on GPU (default on).")
@click.option("--seed", type=int)
@click.option("--num-classes", type=int, help="Synthetic classes, for shards without a manifest.")
@click.option("--epoch-samples", type=int, help="Samples per epoch (default: every synthetic sample once).")
@click.option("--max-steps", type=int, help="At most this many steps per epoch (smoke runs).")
@click.option("--val", help="Pairs set evaluated after every epoch: a 'synth pairs' dir, pairs.txt or .bin.")
@click.option("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available).")
@click.option("--resume", help="Continue from a checkpoint.pt (or a run directory holding one).")
def train(config_name, no_dm, real_only, lr_steps, no_flip, no_augment, resume, **options):
    """Train an ArcFace backbone on synthetic shards, optionally with domain mixup on real faces.

    \b
    Examples:
      synth train --config mbf_cpu --data data/syn_1k_20 --out runs/mbf --val data/pairs
      synth train --config synface_r50 --data data/syn_10k_50 --real data/casia_1k --out runs/dm
      torchrun --nproc_per_node 8 -m synthface.cli train --config synface_r50 --data s3://bucket/syn_10k_50
    """
    from .config import TrainConfig
    from .train import train as run

    if no_dm and real_only:
        raise SynthError("--no-dm and --real-only exclude each other: pick one")
    options["mode"] = "syn" if no_dm else "real" if real_only else None
    options["lr_steps"] = _csv_floats(lr_steps)
    options["flip"] = False if no_flip else None
    if no_augment:
        if options.get("augment") not in (None, "off"):
            raise SynthError("--no-augment and --augment exclude each other: pick one")
        options["augment"] = "off"
    cfg = TrainConfig.load(config_name, **options)
    summary = run(cfg, resume=resume)
    if summary["rank"] != 0:
        return
    losses = ", ".join(f"{v:.3f}" for v in summary["epoch_loss"])
    click.echo(f"trained {cfg.network} on {summary['num_classes']} classes; epoch losses: {losses}")
    for kind, path in summary.get("exported", {}).items():
        click.echo(f"  {kind}: {path}")


@click.command("eval")
@click.argument("model")
@click.option("--pairs", "pair_sets", multiple=True, required=True,
              help="A 'synth pairs'/LFW directory, a pairs.txt, or an insightface .bin (repeatable).")
@click.option("--images", help="Image directory for a pairs.txt elsewhere (LFW naming Name/Name_0001.jpg).")
@click.option("--network", type=click.Choice(["r18", "r50", "mbf"]), help="Network of a bare backbone.pth.")
@click.option("--image-size", help="Network input size (default: from the model, else 112).")
@click.option("--crop", default="1.0", show_default=True,
              help="Centre crop, the fraction of each side kept, before resizing to the input size "
                   "(1 = none; images already at the input size are then used as they are).")
@click.option("--folds", type=int, default=10, show_default=True)
@click.option("--far", type=float, default=1e-3, show_default=True, help="False accept rate for TAR@FAR.")
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
@click.option("--json", "json_out", help="Also write the results as JSON here.")
def eval_(model, pair_sets, images, network, image_size, crop, folds, far, batch_size, device, json_out):
    """Face verification of MODEL (checkpoint.pt, backbone.pth or backbone.ts) with the 10-fold LFW protocol.

    \b
    Examples:
      synth eval runs/mbf/backbone.ts --pairs data/pairs
      synth eval runs/mbf/checkpoint.pt --pairs lfw.bin --pairs cfp_fp.bin
      synth eval runs/mbf/backbone.pth --network mbf --pairs lfw/pairs.txt --images lfw_aligned
    """
    import torch

    from synthface.options import normalise_size

    from . import imaging
    from .evaluate import format_result, load_pairs, verify
    from .export import load_backbone

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    size = normalise_size(image_size) if image_size else None
    net, size = load_backbone(model, network, size, device)
    crop = imaging.parse_crop(crop)
    results = []
    for spec in pair_sets:
        res = verify(net, load_pairs(spec, images, folds), size, crop=crop, batch_size=batch_size,
                     device=device, far=far)
        res["source"] = spec
        results.append(res)
        click.echo(format_result(res, far))
    if json_out:
        with open(json_out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


COMMANDS = [train, eval_]
