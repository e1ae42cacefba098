"""End-to-end build throughput on 1 and 2 workers, the time split inside workers, and the write path.

    python bench/bench_build.py                          # morphable if installed, else the test shapes backend
    python bench/bench_build.py --ids 10000 --per-id 50  # the paper's Syn_10K_50 (takes minutes)
    python bench/bench_build.py --generator tests.backends:ShapesBackend --ids 400 --per-id 10

Prints images/s end to end (Ray start-up included), images/s in steady state (rendering time
only), parallel efficiency from 1 to 2 workers, and the share of worker time spent sampling,
rendering, encoding (image + JSON + tar) and writing. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

from synthface.generator.sampler import Sampler  # noqa: E402
from synthface.pipeline import schema, writer  # noqa: E402
from synthface.pipeline.build import RunOptions, run  # noqa: E402
from synthface.pipeline.config import BuildConfig  # noqa: E402


def default_generator() -> str:
    try:
        import synthface.generator.morphable  # noqa: F401

        return "morphable"
    except ImportError:
        return "tests.backends:ShapesBackend"


def write_path(n: int = 2000) -> dict[str, float]:
    """Microseconds per sample for each step after rendering (112x112 JPEG)."""
    cfg = BuildConfig(ids=100, per_id=20, generator="tests.backends:ShapesBackend")
    sampler = Sampler(cfg.sampling, cfg.ids, cfg.seed)
    t0 = time.perf_counter()
    batch = sampler.batch([(i % 100, i // 100) for i in range(n)])
    t_sample = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (16, 112, 112, 3), dtype=np.uint8)
    images = (images // 32 * 32).astype(np.uint8)  # less noise, closer to a rendered face's entropy
    landmarks = np.zeros((5, 2), np.float32)
    out = {"sample": t_sample}
    t0 = time.perf_counter()
    jpgs = [writer.encode_image(images[b % 16], "jpg", 95) for b in range(n)]
    out["jpeg"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    metas = [
        schema.dumps(schema.sample_metadata(
            key=schema.sample_key(int(batch.cls[b]), int(batch.image[b])), cls=int(batch.cls[b]), image=int(batch.image[b]),
            label=batch.label(b), soft_label=batch.soft_label(b), phi=float(batch.phi[b]), partner=int(batch.partner[b]),
            coeffs=batch.coeffs[b], landmarks=landmarks, generator={"name": "x", "version": "1"}, seed=0))
        for b in range(n)
    ]
    out["json"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tar = writer.TarBuilder()
    for b in range(n):
        key = schema.sample_key(int(batch.cls[b]), int(batch.image[b]))
        tar.add(f"{key}.jpg", jpgs[b])
        tar.add(f"{key}.cls", b"1")
        tar.add(f"{key}.json", metas[b])
    tar.getvalue()
    out["tar"] = time.perf_counter() - t0
    return {k: 1e6 * v / n for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=1000)
    ap.add_argument("--per-id", type=int, default=4)
    ap.add_argument("--shard-size", type=int, default=500)
    ap.add_argument("--generator", default=None)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to compare")
    ap.add_argument("--image-size", default="112")
    ap.add_argument("--out", default=None, help="where to build (default: a temporary directory, removed)")
    args = ap.parse_args()

    us = write_path()
    print("per-sample write path (us): " + ", ".join(f"{k} {v:.1f}" for k, v in us.items()))

    gen = args.generator or default_generator()
    cfg = BuildConfig(ids=args.ids, per_id=args.per_id, shard_size=args.shard_size, generator=gen,
                      image_size=args.image_size)
    base = Path(args.out or tempfile.mkdtemp(prefix="synth-bench-"))
    results = {}
    try:
        for workers in (int(w) for w in args.workers.split(",")):
            out = base / f"w{workers}"
            t0 = time.perf_counter()
            summary = run(cfg, RunOptions(out=str(out), workers=workers, overwrite=True, progress=False))
            wall = time.perf_counter() - t0
            worker_seconds = sum(summary["timing"].values())
            steady = summary["rendered_images"] / (worker_seconds / workers) if worker_seconds else 0.0
            results[workers] = (summary["rendered_images"] / wall, steady)
            share = ", ".join(f"{k} {100 * v / worker_seconds:.0f}%" for k, v in summary["timing"].items())
            print(f"generator {gen}: {cfg.num_samples} images {cfg.image_size[0]}x{cfg.image_size[1]}, "
                  f"{workers} workers: {wall:.1f} s, {results[workers][0]:.0f} images/s end to end, "
                  f"{steady:.0f} images/s steady state; worker time: {share}")
        if 1 in results and 2 in results:
            e2e = results[2][0] / (2 * results[1][0])
            steady = results[2][1] / (2 * results[1][1])
            print(f"parallel efficiency 1 -> 2 workers: {100 * e2e:.0f}% end to end, {100 * steady:.0f}% steady state")
    finally:
        if args.out is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
