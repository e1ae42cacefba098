"""Does the ``morphable`` generator look like faces to models trained on real photographs?

    pip install dlib-bin face-recognition-models     # measurement-only extras, not runtime deps
    python bench/quality.py [--ids 50 --per-id 10 --seed 0 --out quality_out]

Three measurements, with detectors and recognisers that never saw our images:

(a) detection: dlib's HOG frontal face detector (trained on real photos) on each 112x112 image
    upscaled to 224 (it misses faces under ~80 px); the share of images with a face, by |yaw|, and
    for near-frontal images by quarter of skin tone (lightest to darkest) and of pitch;
(b) identity: dlib's ResNet face-recognition model (99.38% on LFW) embeds every image (aligned by
    dlib's own 5-point landmark predictor); same-identity pairs should be much closer than
    different-identity pairs. Reports mean distances, ROC AUC and the balanced verification
    accuracy (mean of the same- and different-pair accuracies) at the best threshold and at dlib's
    standard 0.6. Identity mixup is off here so a class is one person; everything else
    (expression, pose, lighting, background) varies as in a build;
(c) identity morphs: for pairs (i, j), phi from 1 to 0 in 11 steps; the embedding distance to i
    should grow and the distance to j shrink monotonically, and consecutive images should differ
    by similar small amounts (no jumps). Writes a contact sheet of the morphs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from synthface.generator import layout
from synthface.generator.morphable import MorphableBackend
from synthface.generator.preview import contact_sheet, morph_records
from synthface.generator.sampler import SamplingConfig, Sampler


def _dlib():
    try:
        import dlib
    except ImportError:
        sys.exit("needs dlib: pip install dlib-bin face-recognition-models")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        sys.exit("needs the dlib models: pip install face-recognition-models")
    models = Path(spec.origin).parent / "models"
    return (
        dlib,
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat")),
        dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat")),
    )


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(similarity of a random same pair > a random different pair) (Mann-Whitney)."""
    scores = np.concatenate([pos, neg])
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ids", type=int, default=50)
    ap.add_argument("--per-id", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--morphs", type=int, default=10, help="identity pairs to morph")
    ap.add_argument("--out", default="quality_out")
    args = ap.parse_args()
    dlib, detector, predictor, recogniser = _dlib()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    backend = MorphableBackend(image_size=112)
    cfg = SamplingConfig(mixup="off")
    sampler = Sampler(cfg, args.ids, seed=args.seed)
    t0 = time.time()
    batch = sampler.batch([(c, k) for c in range(args.ids) for k in range(args.per_id)])
    rendered = backend.render(batch.coeffs)
    images = rendered.images
    tone = np.array([m["skin_tone"] for m in rendered.meta])
    yaw = np.degrees(np.abs(batch.coeffs[:, layout.SLICES["pose"]][:, 1]))
    pitch = np.degrees(batch.coeffs[:, layout.SLICES["pose"]][:, 0])
    print(f"rendered {len(images)} images ({args.ids} ids x {args.per_id}) in {time.time() - t0:.1f} s")

    def embed(img: np.ndarray):
        big = np.asarray(Image.fromarray(img).resize((224, 224), Image.BICUBIC))
        dets = detector(big, 1)
        rect = max(dets, key=lambda r: r.area()) if dets else dlib.rectangle(20, 20, 204, 204)
        shape = predictor(big, rect)
        return len(dets) > 0, np.array(recogniser.compute_face_descriptor(big, shape))

    found, emb = zip(*(embed(img) for img in images))
    found, emb = np.array(found), np.stack(emb)
    print("(a) detection (dlib HOG, 224 px upscale)")
    print(f"    all: {found.mean() * 100:.1f}% of {len(found)}")
    for lo, hi in ((0, 15), (15, 30), (30, 45), (45, 91)):
        sel = (yaw >= lo) & (yaw < hi)
        if sel.any():
            print(f"    |yaw| {lo:>2}-{hi:<2} deg: {found[sel].mean() * 100:5.1f}% of {sel.sum()}")
    # By skin tone (0 lightest .. 1 darkest) and by pitch, near-frontal only, so that yaw does not
    # confound them.
    frontal = yaw < 15
    for name, values in (("skin tone", tone), ("pitch (deg, + = head down)", pitch)):
        edges = np.quantile(values[frontal], [0.0, 0.25, 0.5, 0.75, 1.0])
        for q, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            sel = frontal & (values >= lo) & ((values < hi) if q < 3 else (values <= hi))
            print(f"    {name} quarter {q + 1} ({lo:.2f} to {hi:.2f}), |yaw| < 15: {found[sel].mean() * 100:5.1f}% of {sel.sum()}")
    # Pairwise distances from the Gram matrix: the [n, n, 128] difference array would need
    # gigabytes at a few thousand images.
    sq = (emb * emb).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2.0 * emb @ emb.T, 0.0))
    cls = batch.cls
    iu = np.triu_indices(len(cls), 1)
    same = (cls[:, None] == cls[None])[iu]
    dist = d[iu]
    pos, neg = dist[same], dist[~same]
    thresholds = np.linspace(0.2, 1.0, 161)
    balanced = [0.5 * ((pos < t).mean() + (neg >= t).mean()) for t in thresholds]
    best = int(np.argmax(balanced))
    print("(b) identity (dlib ResNet embeddings, Euclidean distance; smaller = more similar)")
    print(f"    same-id pairs {len(pos)}: mean {pos.mean():.3f} (sd {pos.std():.3f})")
    print(f"    diff-id pairs {len(neg)}: mean {neg.mean():.3f} (sd {neg.std():.3f})")
    print(f"    ROC AUC {auc(-pos, -neg):.4f}; balanced accuracy {balanced[best] * 100:.1f}% at threshold "
          f"{thresholds[best]:.3f}; at dlib's 0.6: {0.5 * ((pos < 0.6).mean() + (neg >= 0.6).mean()) * 100:.1f}%")
    # (c) morphs
    if args.morphs > 0:
        steps = 11
        mono_i = mono_j = 0
        jumps = []
        rows = []
        for p in range(args.morphs):
            i, j = 2 * p % args.ids, (2 * p + 1) % args.ids
            recs, phis = morph_records(sampler, steps, i, j)
            imgs = backend.render(recs).images
            rows.append(np.concatenate(list(imgs), axis=1))
            e = np.stack([embed(im)[1] for im in imgs])
            di, dj = np.linalg.norm(e - e[0], axis=1), np.linalg.norm(e - e[-1], axis=1)
            mono_i += np.all(np.diff(di) > -0.02)
            mono_j += np.all(np.diff(dj) < 0.02)
            steps_px = np.abs(np.diff(imgs.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
            jumps.append(steps_px.max() / max(steps_px.mean(), 1e-6))
        Image.fromarray(np.concatenate(rows[:6], axis=0)).save(out / "morphs.png")
        print("(c) identity morphs phi 1 -> 0 (11 steps)")
        print(f"    distance to i non-decreasing in {mono_i}/{args.morphs}, to j non-increasing in {mono_j}/{args.morphs}"
              f" (tolerance 0.02)")
        print(f"    largest step / mean step in pixels: mean {np.mean(jumps):.2f}, max {np.max(jumps):.2f} (1 = even)")
    sheet = contact_sheet(SamplingConfig(), ids=6, per_id=8, seed=args.seed)
    sheet.save(out / "preview.png")
    print(f"wrote {out / 'preview.png'}" + (f" and {out / 'morphs.png'}" if args.morphs > 0 else ""))


if __name__ == "__main__":
    main()
