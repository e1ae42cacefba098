"""Trainer throughput: the data loader (with and without domain mixup) and CPU training steps.

    python bench/bench_train.py                      # makes its own shards and real folder in a temp dir
    python bench/bench_train.py --data data/syn_1k_20 --real data/real_faces --batches 40

Loader numbers (without augmentation, and with the ``light`` (the default), ``medium`` and ``strong`` augmentation presets
of ``synth train --augment``) are for ONE process (run it with workers=0, i.e. in this process), so they are the
per-worker rate: what one loader core delivers to the GPU. "images/s" counts training images the
loader hands over; under domain mixup each comes with a real image too, which is decoded on its
first use and then served from the loader's decoded-image cache (``--real-cache-mb``; run more
batches than the real set fills to see the steady state). The mixing and normalisation (which
the trainer does on the training device) are timed separately, on the CPU here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from synthface.trainer import backbones, data, imaging
from synthface.trainer.augment import parse_augment
from synthface.trainer.losses import MarginSoftmax
from synthface.trainer.mixup import DomainMixer


def _make_inputs(tmp: str, size: int) -> tuple[str, str]:
    """A real ``synth build`` (4,000 images, the fast test generator) and a folder of real-size JPEGs."""
    from click.testing import CliRunner

    from synthface.cli import main as synth
    from tests.test_trainer_shards import write_real_folder

    syn = os.path.join(tmp, "syn")
    res = CliRunner().invoke(synth, ["build", "--ids", "100", "--per-id", "40", "--out", syn, "--workers", "0",
                                     "--image-size", str(size), "--generator", "tests.test_trainer_shards:PatternBackend",
                                     "--no-progress"])
    if res.exit_code:
        raise SystemExit(res.output)
    real = write_real_folder(os.path.join(tmp, "real"), ids=50, per_id=20, size=(size, size))
    return syn, real


def bench_loader(syn, real, batch: int, batches: int, size: int, shuffle_buffer: int,
                 augment: str = "off") -> tuple[float, float]:
    """(images/s of wall time, images per CPU second) of one loader process."""
    stream = data.TrainStream(syn, real, batch_size=batch, image_size=(size, size), shuffle_buffer=shuffle_buffer,
                              real_offset=syn.num_classes if syn else 0, augment=parse_augment(augment))
    it = iter(stream)
    first = next(it)  # fills the shuffle buffer (and compiles the augmentation kernels): not the steady state
    if "error" in first:
        raise SystemExit(first["error"])
    t, c = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t), batches * batch / (time.process_time() - c)


def bench_mix(batch: int, size: int, reps: int = 20) -> float:
    syn = np.random.randint(0, 255, (batch, size, size, 3), np.uint8)
    real = np.random.randint(0, 255, (batch, size, size, 3), np.uint8)
    t = time.perf_counter()
    for _ in range(reps):
        DomainMixer.mix(imaging.to_tensor_batch(syn), imaging.to_tensor_batch(real), 0.35)
    return reps * batch / (time.perf_counter() - t)


def bench_step(network: str, batch: int, steps: int, size: int, classes: int = 1000) -> float:
    torch.manual_seed(0)
    # As the trainer runs it: channels-last weights and NHWC input.
    model = backbones.build(network, (size, size)).to(memory_format=torch.channels_last)
    head = MarginSoftmax(512, classes)
    opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.1, momentum=0.9)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    idx = torch.randint(0, classes, (batch, 3))
    w = torch.tensor([[0.5, 0.2, 0.3]]).repeat(batch, 1)

    def step():
        loss = head(model(x), idx, w)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # first call builds the kernels
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="synthetic dataset dir or shard pattern (default: generated)")
    ap.add_argument("--real", help="identity-per-folder real images (default: generated, 128x128 JPEGs)")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--shuffle-buffer", type=int, default=1000)
    ap.add_argument("--network", default="mbf")
    ap.add_argument("--step-batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the step benchmark")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        syn_spec, real_spec = args.data, args.real
        if not syn_spec or not real_spec:
            made_syn, made_real = _make_inputs(tmp, args.size)
            syn_spec, real_spec = syn_spec or made_syn, real_spec or made_real
        syn, real = data.resolve_shards(syn_spec), data.resolve_real(real_spec)
        jpeg = np.mean([os.path.getsize(p) for p, _ in real.items[:200]]) if isinstance(real, data.RealFolder) else 0
        print(f"data: {syn.num_samples} synthetic samples in {len(syn.urls)} shards; real images ~{jpeg / 1024:.1f} KiB")
        print(f"loader, one process, batch {args.batch}, {args.size}x{args.size}:")
        for aug in ("off", "light", "medium", "strong"):
            rate, cpu = bench_loader(syn, None, args.batch, args.batches, args.size, args.shuffle_buffer, aug)
            print(f"  synthetic, augment {aug:<8} {rate:8.0f} images/s ({cpu:.0f} per CPU second)")
        rate, cpu = bench_loader(syn, real, args.batch, args.batches, args.size, args.shuffle_buffer, "light")
        print(f"  with domain mixup, augment light {rate:8.0f} images/s ({cpu:.0f} per CPU second; "
              "+ as many real images, cached after first use)")
        print(f"  mix + normalise (CPU)   {bench_mix(args.batch, args.size):8.0f} images/s")
    rate = bench_step(args.network, args.step_batch, args.steps, args.size)
    print(f"training step, {args.network}, batch {args.step_batch}, {args.threads} thread(s): {rate:.1f} images/s")


if __name__ == "__main__":
    main()
