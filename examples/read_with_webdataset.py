"""Read a synthface build with nothing but webdataset (and numpy): images, labels, soft labels.

    python examples/read_with_webdataset.py data/syn_1k_50 --limit 8

The brace pattern of the shards is in manifest.json. Each sample has ``jpg`` (or png/webp),
``cls`` (the dominant class) and ``json`` (metadata with ``soft_label``: [[class, weight], ...],
weights summing to 1). A trainer with identity mixup uses the soft label as its target.
"""

import argparse
import json
import os

import numpy as np
import webdataset as wds


def soft_target(meta: dict, num_classes: int) -> np.ndarray:
    target = np.zeros(num_classes, dtype=np.float32)
    for cls, weight in meta["soft_label"]:
        target[int(cls)] += weight
    return target


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", help="a build's --out directory")
    ap.add_argument("--limit", type=int, default=10)
    args = ap.parse_args()
    with open(os.path.join(args.out, "manifest.json")) as f:
        manifest = json.load(f)
    urls = os.path.join(args.out, manifest["pattern"])
    fmt = manifest["config"]["format"]
    dataset = (
        wds.WebDataset(urls, shardshuffle=False)
        .decode("rgb8")  # images as HxWx3 uint8; .json parsed to dicts; .cls to int
        .to_tuple(fmt, "cls", "json")
    )
    for i, (image, label, meta) in enumerate(dataset):
        if i >= args.limit:
            break
        target = soft_target(meta, manifest["num_classes"])
        top = [(int(c), round(float(target[c]), 3)) for c in np.flatnonzero(target)]
        print(f"{meta['key']}: image {image.shape} {image.dtype}, label {label}, soft label {top}, "
              f"yaw {meta['pose_deg']['yaw']:+.1f} deg")


if __name__ == "__main__":
    main()
