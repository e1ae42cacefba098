"""Which (class, image) pairs go into which shard: a pure function of the config.

Global sample ``s`` belongs to round ``k = s // ids`` (image ``k`` of every identity) at
position ``p = s % ids``; the class at that position comes from a permutation of the identities
seeded by ``(seed, round)``. So each shard holds up to ``shard_size`` distinct identities in an
order that does not correlate with class numbers, a reader streaming a few shards sees many
identities, and nothing depends on how many workers render the shards.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .config import BuildConfig

_PLAN_TAG = 4  # distinct from the sampler's stream tags


@lru_cache(maxsize=8)
def _round_permutation(seed: int, ids: int, round_: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _PLAN_TAG, round_])))
    perm = rng.permutation(ids).astype(np.int64)
    perm.setflags(write=False)
    return perm


def shard_range(cfg: BuildConfig, shard: int) -> tuple[int, int]:
    if not 0 <= shard < cfg.num_shards:
        raise IndexError(f"shard {shard} is outside 0..{cfg.num_shards - 1}")
    start = shard * cfg.shard_size
    return start, min(start + cfg.shard_size, cfg.num_samples)


def samples(cfg: BuildConfig, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Classes and image indices of global samples ``start .. stop - 1``."""
    s = np.arange(start, stop, dtype=np.int64)
    rounds, pos = np.divmod(s, cfg.ids)
    cls = np.empty_like(s)
    for r in np.unique(rounds):
        mask = rounds == r
        cls[mask] = _round_permutation(cfg.seed, cfg.ids, int(r))[pos[mask]]
    return cls, rounds


def shard_samples(cfg: BuildConfig, shard: int) -> tuple[np.ndarray, np.ndarray]:
    return samples(cfg, *shard_range(cfg, shard))


def chunks(n: int, size: int) -> list[slice]:
    """Fixed-size render chunks of a shard (the last one may be short)."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]
