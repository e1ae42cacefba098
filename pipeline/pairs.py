"""``synth pairs``: a held-out synthetic verification set in LFW layout.

Identities are classes ``[offset, offset + ids)`` of a sampler over ``offset + ids`` identities with
the build's seed, generator and sampling options but identity mixup off. An identity's face depends
only on (seed, class), so with ``offset`` above the number of training identities (default 10^6)
none of these people, nor any mixup partner, was seen in training, while everything else about the
images (generator, pose/expression/lighting distributions) matches the training build.

Like LFW's, folds are identity-disjoint: identities are dealt to folds, and each fold's same and
different pairs use only its own identities. Pairs are unique and drawn with a seeded generator,
so the same options give the same files.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from synthface.errors import SynthError
from synthface.generator import registry

from . import schema
from .writer import encode_image

DEFAULT_OFFSET = 10**6


def identity_name(c: int) -> str:
    return f"id{c:07d}"


def choose_pairs(ids: int, per_id: int, same: int, different: int, folds: int, seed: int, offset: int = 0):
    """(same pairs [(name, a, b)], different pairs [(n1, a, n2, b)]) in fold order, 1-based image numbers."""
    if same % folds or different % folds:
        raise SynthError(f"--same {same} and --different {different} must both be multiples of --folds {folds}")
    if ids < 2 * folds:
        raise SynthError(f"{ids} identities cannot make {folds} identity-disjoint folds: use at least {2 * folds}")
    if per_id < 2 and same:
        raise SynthError("same pairs need at least 2 images per identity: raise --images-per-id")
    rng = np.random.default_rng([int(seed), 0xFA125])
    members = np.array_split(rng.permutation(ids), folds)
    out_same, out_diff = [], []
    for fold in members:
        n = len(fold)
        if same // folds > n * per_id * (per_id - 1) // 2:
            raise SynthError(f"{same} same pairs need more images: each fold of {n} identities x {per_id} images "
                             f"has only {n * per_id * (per_id - 1) // 2}; raise --ids or --images-per-id")
        picked: set = set()
        while len(picked) < same // folds:
            c = int(fold[rng.integers(n)])
            a, b = sorted(rng.choice(per_id, size=2, replace=False).tolist())
            picked.add((c, a, b))
        out_same += [(identity_name(offset + c), a + 1, b + 1) for c, a, b in sorted(picked)]
        picked = set()
        while len(picked) < different // folds:
            c1, c2 = sorted(int(v) for v in rng.choice(fold, size=2, replace=False))
            picked.add((c1, int(rng.integers(per_id)), c2, int(rng.integers(per_id))))
        out_diff += [(identity_name(offset + c1), a + 1, identity_name(offset + c2), b + 1)
                     for c1, a, c2, b in sorted(picked)]
    return out_same, out_diff


def write_pairs(path: str, same: list[tuple[str, int, int]], diff: list[tuple[str, int, str, int]], folds: int) -> None:
    """pairs.txt in LFW's layout: a header, then per fold its same pairs followed by its different pairs.

    ``same`` and ``diff`` are in fold order, an equal share per fold.
    """
    if len(same) % folds or len(diff) % folds:
        raise SynthError(f"pair counts ({len(same)} same, {len(diff)} different) must divide into {folds} folds")
    ps, pd = len(same) // folds, len(diff) // folds
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{folds}\t{ps}\n")
        for k in range(folds):
            f.writelines(f"{name}\t{a}\t{b}\n" for name, a, b in same[k * ps:(k + 1) * ps])
            f.writelines(f"{n1}\t{a}\t{n2}\t{b}\n" for n1, a, n2, b in diff[k * pd:(k + 1) * pd])


def build_pairs(out: str, build_cfg, *, ids: int, per_id: int, offset: int = DEFAULT_OFFSET, same: int = 3000,
                different: int = 3000, folds: int = 10, device: str = "cpu", batch_size: int = 64,
                progress: bool = True) -> dict[str, Any]:
    """Render ``ids`` x ``per_id`` held-out faces and write them with pairs.txt under ``out``."""
    if offset < 0:
        raise SynthError(f"--class-offset must be >= 0, got {offset}")
    pairs_same, pairs_diff = choose_pairs(ids, per_id, same, different, folds, build_cfg.seed, offset)
    sampling = build_cfg.sampling.with_(mixup=None)
    backend, sampler = registry.create_with_sampler(build_cfg.generator, sampling, offset + ids, build_cfg.seed,
                                                    image_size=build_cfg.image_size, device=device,
                                                    options=build_cfg.generator_options)
    todo = [(offset + c, k) for c in range(ids) for k in range(per_id)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="rendering pairs set", unit="img", dynamic_ncols=True, leave=False)
    os.makedirs(out, exist_ok=True)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        images = backend.render(sampler.batch(chunk).coeffs).images
        for (c, k), image in zip(chunk, images):
            name = identity_name(c)
            os.makedirs(os.path.join(out, name), exist_ok=True)
            data = encode_image(image, "jpg", int(build_cfg.quality))  # encoded exactly as a build's images
            with open(os.path.join(out, schema.pairs_image(name, k + 1) + ".jpg"), "wb") as f:
                f.write(data)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    write_pairs(os.path.join(out, schema.PAIRS_NAME), pairs_same, pairs_diff, folds)
    return {"out": out, "ids": ids, "images": len(todo), "same": len(pairs_same), "different": len(pairs_diff),
            "folds": folds, "classes": [offset, offset + ids]}
