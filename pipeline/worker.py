"""One shard, start to finish: sample -> render -> encode -> tar -> write, with timings.

A ShardWorker loads the generator once and then renders shard after shard. It knows nothing of
Ray: the distributor wraps it in an actor, and ``--workers 0`` runs it in the driver process.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from typing import Any

from synthface.generator import registry

from . import index, plan, schema, writer
from .config import BuildConfig
from .storage import Storage

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def single_thread_env() -> dict[str, str]:
    """Each worker owns one CPU; libraries that start a thread per core would oversubscribe it."""
    return {name: "1" for name in THREAD_ENV}


def use_one_thread() -> None:
    """Called in worker processes before the generator (numba, torch) is imported."""
    os.environ.update(single_thread_env())


class ShardWorker:
    def __init__(self, cfg: dict[str, Any], storage: Storage, *, device: str = "cpu", batch_size: int = 64,
                 name: str = "local", node: str | None = None):
        self.cfg = cfg if isinstance(cfg, BuildConfig) else BuildConfig.from_dict(cfg)
        self.storage = storage
        self.batch_size = int(batch_size)
        self.name = name
        self.node = node or platform.node()
        self.backend, self.sampler = registry.create_with_sampler(
            self.cfg.generator, self.cfg.sampling, self.cfg.ids, self.cfg.seed, image_size=self.cfg.image_size,
            device=device, options=self.cfg.generator_options,
        )
        if "torch" in sys.modules and os.environ.get("OMP_NUM_THREADS") == "1":
            sys.modules["torch"].set_num_threads(1)
        self.generator_info = {"name": self.backend.name, "version": self.backend.version}

    def ping(self) -> str:
        return self.node

    def index_rows(self, shard: int) -> dict[str, Any]:
        """The index rows of a shard without rendering it (for shards a resumed build skips)."""
        cls, img = plan.shard_samples(self.cfg, shard)
        parts = []
        for sl in plan.chunks(len(cls), self.batch_size):
            batch = self.sampler.batch(zip(cls[sl], img[sl]))
            parts.append(index.columns(batch, schema.shard_name(self.cfg.prefix, shard)))
        return index.concat(parts)

    def build(self, shard: int) -> dict[str, Any]:
        """Render and write one shard; returns its stats and index rows."""
        cfg = self.cfg
        t_start = time.perf_counter()
        timing = {"sample": 0.0, "render": 0.0, "encode": 0.0, "write": 0.0}
        cls, img = plan.shard_samples(cfg, shard)
        shard_file = schema.shard_name(cfg.prefix, shard)
        tar = writer.TarBuilder()
        ext = cfg.format
        generator_meta = self.generator_info
        parts = []
        for sl in plan.chunks(len(cls), self.batch_size):
            t0 = time.perf_counter()
            batch = self.sampler.batch(zip(cls[sl], img[sl]))
            t1 = time.perf_counter()
            result = self.backend.render(batch.coeffs)
            t2 = time.perf_counter()
            if result.images.shape[0] != len(batch):
                raise RuntimeError(f"generator returned {result.images.shape[0]} images for {len(batch)} records")
            parts.append(index.columns(batch, shard_file))
            labels, soft_labels = batch.labels().tolist(), batch.soft_labels()
            for b in range(len(batch)):
                c, k = int(batch.cls[b]), int(batch.image[b])
                key = schema.sample_key(c, k)
                label = labels[b]
                extra = result.meta[b] if result.meta else None
                meta = schema.sample_metadata(
                    key=key, cls=c, image=k, label=label, soft_label=soft_labels[b],
                    phi=float(batch.phi[b]), partner=int(batch.partner[b]), coeffs=batch.coeffs[b],
                    landmarks=result.landmarks[b], generator=generator_meta, seed=cfg.seed, extra=extra,
                )
                tar.add(f"{key}.{ext}", writer.encode_image(result.images[b], ext, cfg.quality))
                tar.add(f"{key}.cls", str(label).encode("ascii"))
                tar.add(f"{key}.json", schema.dumps(meta))
            t3 = time.perf_counter()
            timing["sample"] += t1 - t0
            timing["render"] += t2 - t1
            timing["encode"] += t3 - t2
        t4 = time.perf_counter()
        data = tar.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        self.storage.write(shard_file, data)
        timing["write"] = time.perf_counter() - t4
        stats = {
            "shard": shard,
            "name": shard_file,
            "count": int(len(cls)),
            "sha256": digest,
            "bytes": len(data),
            "seconds": round(time.perf_counter() - t_start, 6),
            "timing": {k: round(v, 6) for k, v in timing.items()},
            "node": self.node,
            "worker": self.name,
            "pid": os.getpid(),
        }
        # Stats go after the shard: a stats file always describes a complete shard.
        self.storage.write(schema.stats_name(cfg.prefix, shard), schema.dumps(stats))
        return {"stats": stats, "index": index.concat(parts)}

