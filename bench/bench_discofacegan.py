"""Images per second of the discofacegan backend at several batch sizes.

    python bench/bench_discofacegan.py                         # random weights of the released sizes, CPU
    python bench/bench_discofacegan.py --weights dfg.safetensors --device cuda --batch-sizes 1,8,32,64 --images 256

Random weights cost exactly what the real ones do (same shapes, same ops), so the default needs no
download. Each batch size renders one warm-up batch, then ``--images`` records (rounded up to whole
batches); the time covers mapping, truncation, synthesis, alignment, quantisation and the copy back.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.discofacegan_files

from synthface.generator.discofacegan import DiscoFaceGANBackend  # noqa: E402
from synthface.generator.sampler import Sampler, SamplingConfig  # noqa: E402
from tests import discofacegan_files as testing  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="converted weights (default: random weights of the released sizes)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    ap.add_argument("--channels-last", default="auto")
    ap.add_argument("--batch-sizes", default="1,2,4")
    ap.add_argument("--images", type=int, default=4, help="records timed per batch size")
    ap.add_argument("--image-size", default="112")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or str(testing.write_random_converted(Path(tmp) / "random.safetensors", average_samples=8))
        sizes = [int(s) for s in args.batch_sizes.split(",") if s]
        backend = DiscoFaceGANBackend(image_size=args.image_size, device=args.device, weights=weights,
                                      precision=args.precision, channels_last=args.channels_last, batch_size=max(sizes))
        prior = DiscoFaceGANBackend.prior(SamplingConfig(), weights=weights)
        sampler = Sampler(SamplingConfig(), num_classes=1000, seed=0, prior=prior)
        t0 = time.perf_counter()
        records = sampler.batch([(c % 1000, c // 1000) for c in range(max(args.images, max(sizes)) + max(sizes))])
        t_sample = time.perf_counter() - t0
        print(f"device={args.device} dtype={backend.dtype} channels_last={args.channels_last} "
              f"threads={torch.get_num_threads()} image_size={backend.image_size}")
        print(f"sampling (z draws + decoders + mixup): {len(records) / t_sample:.0f} records/s")
        for bs in sizes:
            backend.batch_size = bs
            backend.render(records.coeffs[:bs])  # warm-up
            n = -(-args.images // bs) * bs
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for start in range(0, n, bs):
                backend.render(records.coeffs[start : start + bs])
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            print(f"batch {bs:4d}: {n / dt:8.2f} images/s  ({n} images in {dt:.2f} s)")


if __name__ == "__main__":
    main()
