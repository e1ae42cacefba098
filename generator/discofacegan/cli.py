"""``synth convert-weights``: the official DiscoFaceGAN release -> one safetensors file."""

from __future__ import annotations

import click


@click.command("convert-weights")
@click.option("--pickle", "pickle_path", required=True, type=click.Path(dir_okay=False),
              help="Official generator snapshot, network-snapshot-020126.pkl (its Gs is converted).")
@click.option("--vae-dir", required=True, type=click.Path(file_okay=False),
              help="DiscoFaceGAN's vae/weights directory (id, exp, gamma, rot checkpoints).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .safetensors file.")
@click.option("--average-samples", default=None, type=click.IntRange(min=1),
              help="Identities averaged for the truncation centre [default: 50000, as the reference].")
@click.option("--average-seed", default=None, type=int,
              help="numpy legacy seed of those identities [default: 1, as the reference].")
@click.option("--average-w-id", "average_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Use the reference's precomputed *-average_w_id.txt instead of computing it.")
def convert_weights(pickle_path, vae_dir, out, average_samples, average_seed, average_file):
    """Convert DiscoFaceGAN's TensorFlow weights (read without TensorFlow) for --generator discofacegan.

    \b
    Example:
      synth convert-weights --pickle network-snapshot-020126.pkl --vae-dir vae/weights --out dfg.safetensors
      synth build --generator discofacegan --generator-option weights=dfg.safetensors ...
    """
    from tqdm import tqdm

    from . import convert as conv  # torch loads only when the command runs

    samples = conv.AVERAGE_SAMPLES if average_samples is None else average_samples
    with tqdm(total=samples, desc="average identity W", unit="id", disable=average_file is not None, leave=False) as bar:
        path = conv.convert(
            pickle_path,
            vae_dir,
            out,
            average_samples=samples,
            average_seed=conv.AVERAGE_SEED if average_seed is None else average_seed,
            average_file=average_file,
            progress=bar.update,
        )
    click.echo(f"wrote {path}")


COMMANDS = [convert_weights]
