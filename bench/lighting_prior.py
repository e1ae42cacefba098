"""Where the default lighting prior comes from, and a check that the sampler follows it.

    python bench/lighting_prior.py --vae-dir DiscoFaceGAN/vae/weights [--draws 200000]

Decodes ``--draws`` latents z ~ N(0, I) with DiscoFaceGAN's lighting decoder (its VAE was trained on
spherical-harmonics coefficients fitted to FFHQ photographs), averages the 27 coefficients over the
colour channels, and prints their mean and the Cholesky factor of their covariance in the form of
``synthface.generator.sampler.LIGHT_MEAN`` / ``LIGHT_CHOL``, then the same summary (light from above, elevation,
strength) for the decoder and for the sampler's default prior side by side. Only the ``gamma``
decoder's checkpoint is read; no TensorFlow needed.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from synthface.errors import SynthError
from synthface.generator import layout
from synthface.generator.discofacegan import decoders as dec
from synthface.generator.discofacegan.convert import read_decoder
from synthface.generator.sampler import LIGHT_CHOL, LIGHT_MEAN, GaussianPrior, SamplingConfig


def _numbers(values: np.ndarray) -> str:
    """Rounded to 3 decimals as the table in the sampler writes them."""
    return ", ".join(f"{v:.3g}" if abs(v) >= 1e-3 else "0.0" for v in np.round(values, 3))


def summary(sh: np.ndarray) -> str:
    """sh: [n, 9] channel-averaged coefficients. Band 1 is (-y, z, -x) times the light's strength."""
    d = np.stack([-sh[:, 3], -sh[:, 1], sh[:, 2]], axis=1)
    strength = np.linalg.norm(d, axis=1)
    elev = np.degrees(np.arcsin(d[:, 1] / np.maximum(strength, 1e-12)))
    q = lambda x: " / ".join(f"{v:.2f}" for v in np.quantile(x, [0.05, 0.5, 0.95]))  # noqa: E731
    return (f"from above {100 * (sh[:, 1] < 0).mean():5.1f}%   elevation deg (5/50/95%) {q(elev)}   "
            f"strength {q(strength)}   ambient sd {sh[:, 0].std():.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vae-dir", required=True, help="DiscoFaceGAN's vae/weights directory (only gamma/ is read)")
    ap.add_argument("--draws", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        decoder = dec.CoeffDecoder.from_tensors(read_decoder(args.vae_dir, "gamma"))
    except SynthError as e:
        sys.exit(f"error: {e}")
    rng = np.random.default_rng(args.seed)
    gamma = decoder(rng.standard_normal((args.draws, decoder.z_size), dtype=np.float32)).astype(np.float64)
    sh = gamma.reshape(-1, layout.SH_CHANNELS, layout.SH_BANDS).mean(axis=1)
    mean, chol = sh.mean(axis=0), np.linalg.cholesky(np.cov(sh.T))
    print(f"LIGHT_MEAN = ({_numbers(mean)})")
    print("LIGHT_CHOL = (")
    for k in range(layout.SH_BANDS):
        print(f"    ({_numbers(chol[k, : k + 1])}{',' if k == 0 else ''}),")
    print(")")
    table_mean, table_chol = np.array(LIGHT_MEAN), np.zeros((layout.SH_BANDS, layout.SH_BANDS))
    for k, row in enumerate(LIGHT_CHOL):
        table_chol[k, : k + 1] = row
    print(f"largest difference from the table in the sampler: mean {np.abs(table_mean - np.round(mean, 3)).max():.3f}, "
          f"Cholesky {np.abs(table_chol - np.round(chol, 3)).max():.3f}")
    prior = GaussianPrior(SamplingConfig())
    n = min(args.draws, 50_000)
    ours = np.stack([prior.lighting(np.random.default_rng(i)) for i in range(n)]).astype(np.float64)
    ours = ours.reshape(-1, layout.SH_CHANNELS, layout.SH_BANDS).mean(axis=1)
    print(f"decoder ({args.draws:,} draws):  {summary(sh)}")
    print(f"sampler ({n:,} draws):   {summary(ours)}")


if __name__ == "__main__":
    main()
