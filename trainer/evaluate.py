"""Face verification, the LFW protocol: 10-fold accuracy, plus TAR@FAR and ROC-AUC.

Protocol (as insightface's ``verification.py`` and the LFW benchmark define it):

* every image is embedded twice, as is and mirrored; the two embeddings are summed and
  L2-normalised; a pair's score is the cosine similarity of its two embeddings;
* the pairs are split into ``folds`` contiguous folds in file order (LFW's pairs.txt lists its ten
  folds one after another; insightface's .bin files keep that order);
* for each fold the threshold is chosen on the *other* folds: the one that maximises their
  accuracy (predict "same" when score > threshold; candidates are the midpoints between adjacent
  distinct scores plus one below and one above all; ties go to the lowest threshold), and accuracy
  is measured on the held-out fold. The result is the mean and std over folds.

Also reported, over all pairs at once: TAR@FAR (the fraction of same pairs scoring above the
threshold at which ``floor(FAR * negatives)`` different pairs are accepted, i.e. the score of the
next-highest negative), and the ROC AUC (Mann-Whitney, ties counted half).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from synthface.errors import SynthError

from . import imaging


@dataclass
class PairSet:
    """Verification pairs over a list of images loaded on demand (``load(n)`` -> uint8 HxWx3)."""

    name: str
    num_images: int
    load: Callable[[int], np.ndarray]
    first: np.ndarray  # [P] image index
    second: np.ndarray  # [P] image index
    issame: np.ndarray  # [P] bool
    folds: int = 10

    def __post_init__(self):
        if len(self.issame) < self.folds:
            raise SynthError(f"{self.name}: {len(self.issame)} pairs cannot make {self.folds} folds")
        if self.issame.all() or not self.issame.any():
            raise SynthError(f"{self.name}: needs both same and different pairs to measure verification")


def best_threshold(scores: np.ndarray, issame: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy of ``score > threshold`` on these pairs."""
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], issame[order].astype(np.int64)
    n = len(s)
    # Predicting "same" for positions >= k: correct = negatives before k + positives from k on.
    neg_before = np.concatenate([[0], np.cumsum(1 - y)])
    pos_from = y.sum() - np.concatenate([[0], np.cumsum(y)])
    correct = neg_before + pos_from
    # Only cut between distinct scores (k = 0, n, or s[k-1] < s[k]).
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = s[1:] > s[:-1]
    correct = np.where(valid, correct, -1)
    k = int(np.argmax(correct))
    if k == 0:
        thr = float(s[0]) - 1.0
    elif k == n:
        thr = float(s[-1]) + 1.0
    else:
        thr = float((s[k - 1] + s[k]) / 2.0)
    return thr, float(correct[k]) / n


def kfold_accuracy(scores: np.ndarray, issame: np.ndarray, folds: int = 10) -> dict:
    scores, issame = np.asarray(scores, dtype=np.float64), np.asarray(issame, dtype=bool)
    parts = np.array_split(np.arange(len(scores)), folds)
    accs, thresholds = [], []
    for test in parts:
        train = np.setdiff1d(np.arange(len(scores)), test)
        thr, _ = best_threshold(scores[train], issame[train])
        accs.append(float(np.mean((scores[test] > thr) == issame[test])))
        thresholds.append(thr)
    return {"accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
            "fold_accuracy": accs, "thresholds": thresholds}


def tar_at_far(scores: np.ndarray, issame: np.ndarray, far: float = 1e-3) -> float:
    neg = np.sort(scores[~issame])[::-1]
    allowed = int(np.floor(far * len(neg)))
    if allowed >= len(neg):
        return 1.0
    return float(np.mean(scores[issame] > neg[allowed]))


def roc_auc(scores: np.ndarray, issame: np.ndarray) -> float:
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # Average ranks over ties, 1-based.
    _, start, counts = np.unique(s, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    pos = issame.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def metrics(scores: np.ndarray, issame: np.ndarray, folds: int = 10, far: float = 1e-3) -> dict:
    scores, issame = np.asarray(scores, dtype=np.float64), np.asarray(issame, dtype=bool)
    out = kfold_accuracy(scores, issame, folds)
    out[f"tar@far={far:g}"] = tar_at_far(scores, issame, far)
    out["auc"] = roc_auc(scores, issame)
    out["pairs"] = len(scores)
    return out


@torch.no_grad()
def embed(model: torch.nn.Module, pairset: PairSet, image_size: tuple[int, int], *, crop: float = 1.0,
          batch_size: int = 128, device: str | torch.device = "cpu") -> torch.Tensor:
    """[N, D] L2-normalised embeddings, each the sum over the image and its mirror."""
    was_training = getattr(model, "training", False)
    model.eval()
    out = []
    h, w = image_size
    try:
        for start in range(0, pairset.num_images, batch_size):
            count = min(batch_size, pairset.num_images - start)
            images = np.empty((count, h, w, 3), dtype=np.uint8)
            for n in range(count):
                images[n] = imaging.fit(pairset.load(start + n), (h, w), crop)
            x = imaging.to_tensor_batch(images, device)
            e = model(x).float() + model(torch.flip(x, dims=[3])).float()
            out.append(torch.nn.functional.normalize(e, dim=1).cpu())
    finally:
        if was_training:
            model.train()
    return torch.cat(out)


def verify(model: torch.nn.Module, pairset: PairSet, image_size: tuple[int, int], *, crop: float = 1.0,
           batch_size: int = 128, device="cpu", far: float = 1e-3) -> dict:
    emb = embed(model, pairset, image_size, crop=crop, batch_size=batch_size, device=device)
    scores = (emb[pairset.first] * emb[pairset.second]).sum(dim=1).numpy()
    out = metrics(scores, pairset.issame, pairset.folds, far)
    out["name"] = pairset.name
    return out


def load_pairs(spec: str, images: str | None = None, folds: int = 10) -> PairSet:
    """A pair set from an insightface ``.bin`` file, a ``pairs.txt``, or a directory holding one."""
    from . import bins, lfw

    if str(spec).endswith(".bin"):
        return bins.read_bin(spec, folds=folds)
    return lfw.read_pairs(spec, images, folds=folds)


def format_result(res: dict, far: float = 1e-3) -> str:
    return (f"{res.get('name', 'pairs')}: accuracy {100 * res['accuracy']:.2f} +- {100 * res['accuracy_std']:.2f}% "
            f"(10-fold, {res['pairs']} pairs), TAR@FAR={far:g} {100 * res[f'tar@far={far:g}']:.2f}%, "
            f"AUC {res['auc']:.4f}")
