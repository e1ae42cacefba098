"""Render throughput of the ``morphable`` generator, per core.

    python bench/bench_render.py [--sizes 112,256] [--batches 1,16,64,256] [--seconds 2]

Runs single-threaded (NUMBA_NUM_THREADS=1, as each build worker does) on records from the
default sampler, after a warm-up that compiles or loads the kernels. Prints renders per second
of wall-clock time and of process CPU time, and the CPU-time rate of the fastest batch: on a
shared machine the CPU-time columns are the steadier estimates of what one dedicated core does
(a busy neighbour on the same physical core still slows a run down, which the best-batch column
mostly filters out; compare A/B runs taken in the same conditions).
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from synthface.generator.morphable import MorphableBackend  # noqa: E402
from synthface.generator.sampler import SamplingConfig, Sampler  # noqa: E402


def measure(backend: MorphableBackend, records: np.ndarray, batch: int, seconds: float) -> tuple[float, float, float]:
    n = wall = cpu = 0.0
    best = float("inf")
    i = 0
    while wall < seconds:
        recs = records[i : i + batch]
        if len(recs) < batch:
            i = 0
            recs = records[:batch]
        w0, c0 = time.perf_counter(), time.process_time()
        backend.render(recs)
        wall += time.perf_counter() - w0
        dt = time.process_time() - c0
        cpu += dt
        best = min(best, dt / batch)
        n += batch
        i += batch
    return n / wall, n / cpu, 1.0 / best if best > 0 else float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="112,256")
    ap.add_argument("--batches", default="1,16,64,256")
    ap.add_argument("--seconds", type=float, default=2.0, help="measuring time per cell")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    records = Sampler(SamplingConfig(), 1000, seed=0).batch([(c, 0) for c in range(1000)]).coeffs
    print(f"morphable renders/s per core (NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}, {os.cpu_count()} CPUs)")
    print(f"{'size':>6} {'batch':>6} {'wall r/s':>10} {'cpu r/s':>10} {'best r/s':>10} {'ms/render':>10}")
    for size in sizes:
        backend = MorphableBackend(image_size=size)
        backend.render(records[:2])  # compile or load the kernels, build the model
        for batch in batches:
            wall, cpu, best = measure(backend, records, batch, args.seconds)
            print(f"{size:>6} {batch:>6} {wall:>10.0f} {cpu:>10.0f} {best:>10.0f} {1000.0 / cpu:>10.3f}")


if __name__ == "__main__":
    main()
