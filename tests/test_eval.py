"""The verification protocol on hand-made scores, and the LFW / .bin pair sources."""

from __future__ import annotations

import os
import pickle
import struct

import numpy as np
import pytest
import simplejpeg

from synthface.errors import SynthError
from synthface.trainer import bins, evaluate


def fold_table():
    """Ten folds of (same, different) pairs, in file order. Folds 0-8 separate at any threshold in
    (0.34, 0.6); fold 9 (same 0.12, different 0.05) separates on its own at 0.085 but not at the
    threshold the other nine folds choose (any cut below 0.12 misclassifies many different pairs),
    so the protocol scores it 0.5: mean 0.95, std 0.15.
    Choosing the threshold on the test fold itself would report 1.0."""
    scores, issame = [], []
    for k in range(9):
        scores += [0.6 + 0.02 * k, 0.1 + 0.03 * k]
        issame += [True, False]
    scores += [0.12, 0.05]
    issame += [True, False]
    return np.array(scores), np.array(issame)


def test_ten_fold_protocol_reproduces_hand_computed_accuracy():
    scores, issame = fold_table()
    res = evaluate.kfold_accuracy(scores, issame, folds=10)
    assert res["fold_accuracy"] == [1.0] * 9 + [0.5]
    assert res["accuracy"] == pytest.approx(0.95)
    assert res["accuracy_std"] == pytest.approx(0.15)
    # The thresholds come from the training folds: midpoint of the gap between 0.34 (0.31 when fold 8
    # is held out) and 0.6.
    assert res["thresholds"][9] == pytest.approx(0.47)
    assert res["thresholds"][8] == pytest.approx((0.31 + 0.6) / 2)
    # What a wrong protocol (threshold picked on the test fold) would report:
    cheat = np.mean([evaluate.best_threshold(scores[2 * k:2 * k + 2], issame[2 * k:2 * k + 2])[1] for k in range(10)])
    assert cheat == 1.0 != res["accuracy"]


def test_best_threshold_ties_and_extremes():
    thr, acc = evaluate.best_threshold(np.array([0.1, 0.2, 0.2, 0.9]), np.array([False, True, False, True]))
    assert acc == 0.75 and thr == pytest.approx(0.15)  # lowest of the equally good cuts; never inside a tie
    thr, acc = evaluate.best_threshold(np.array([0.5, 0.6]), np.array([True, True]))
    assert acc == 1.0 and thr < 0.5


def test_tar_at_far_and_auc():
    neg = np.linspace(0.0, 0.5, 1000)  # the highest negative is 0.5, then 0.4995 ...
    pos = np.array([0.499, 0.4996, 0.6, 0.7])
    scores = np.concatenate([pos, neg])
    issame = np.concatenate([np.ones(4, bool), np.zeros(1000, bool)])
    # FAR 1e-3 of 1000 negatives: one may pass, so the threshold is the second-highest negative.
    assert evaluate.tar_at_far(scores, issame, 1e-3) == 0.75
    assert evaluate.tar_at_far(scores, issame, 1e-4) == 0.5
    assert evaluate.roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True])) == 0.75
    assert evaluate.roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5


def _write_lfw(root, names=("Ann_Lee", "Bob_Ray"), per=2):
    for name in names:
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for n in range(1, per + 1):
            img = np.full((120, 100, 3), 40 * n, np.uint8)
            with open(os.path.join(root, name, f"{name}_{n:04d}.jpg"), "wb") as f:
                f.write(simplejpeg.encode_jpeg(img, colorspace="RGB"))


def test_lfw_pairs_file(tmp_path):
    _write_lfw(tmp_path)
    (tmp_path / "pairs.txt").write_text("2\t1\nAnn_Lee\t1\t2\nAnn_Lee\t1\tBob_Ray\t2\nBob_Ray\t1\t2\nAnn_Lee\t2\tBob_Ray\t1\n")
    ps = evaluate.load_pairs(str(tmp_path))
    assert ps.folds == 2 and ps.issame.tolist() == [True, False, True, False]
    assert ps.num_images == 4 and ps.load(ps.first[1]).shape == (120, 100, 3)
    assert ps.first[0] == ps.first[1]  # Ann_Lee_0001 is one image, embedded once


def test_pairs_file_naming_a_missing_image_is_a_one_line_error(tmp_path):
    _write_lfw(tmp_path)
    (tmp_path / "pairs.txt").write_text("Ann_Lee\t1\t3\nAnn_Lee\t1\tBob_Ray\t1\n")
    with pytest.raises(SynthError, match=r"Ann_Lee/Ann_Lee_0003\.jpg, which is not in") as exc:
        evaluate.load_pairs(str(tmp_path / "pairs.txt"))
    assert "\n" not in str(exc.value)
    with pytest.raises(SynthError, match="no pairs file"):
        evaluate.load_pairs(str(tmp_path / "nope"))


def _py2_pickle(images: list[bytes], issame: list[bool]) -> bytes:
    """What Python 2's pickle.dump((images, issame), f, protocol=2) writes: images as BINSTRING."""
    out = [b"\x80\x02", b"]", b"("]
    for data in images:
        out.append(b"T" + struct.pack("<I", len(data)) + data)
    out += [b"e", b"]", b"("]
    out += [b"\x88" if v else b"\x89" for v in issame]
    out += [b"e", b"\x86", b"."]
    return b"".join(out)


def test_insightface_bin_python2_and_python3(tmp_path):
    imgs = [simplejpeg.encode_jpeg(np.full((112, 112, 3), v, np.uint8), colorspace="RGB") for v in (10, 200, 90, 90)]
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(_py2_pickle(imgs, [False, True]))  # the reason for encoding='bytes'
    (tmp_path / "py2.bin").write_bytes(_py2_pickle(imgs, [False, True]))
    bins.write_bin(str(tmp_path / "py3.bin"), imgs, [False, True])
    for name in ("py2.bin", "py3.bin"):
        ps = evaluate.load_pairs(str(tmp_path / name), folds=2)
        assert ps.issame.tolist() == [False, True] and ps.num_images == 4
        assert ps.first.tolist() == [0, 2] and ps.second.tolist() == [1, 3]
        assert abs(int(ps.load(1)[0, 0, 0]) - 200) <= 2


def test_bin_refuses_arbitrary_objects(tmp_path):
    (tmp_path / "evil.bin").write_bytes(pickle.dumps((os.system, "true")))
    with pytest.raises(SynthError, match="not an insightface .bin"):
        bins.read_bin(str(tmp_path / "evil.bin"))


def test_verify_with_a_fixed_embedder(tmp_path):
    """End to end through embed(): an 'embedder' that reads the image's mean colour."""
    import torch

    _write_lfw(tmp_path, names=("Ann_Lee", "Bob_Ray", "Cy_Doe", "Di_Fox"))
    lines = ["Ann_Lee\t1\t2", "Ann_Lee\t1\tBob_Ray\t1", "Cy_Doe\t1\t2", "Cy_Doe\t2\tDi_Fox\t1"]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")

    class Mean(torch.nn.Module):
        def forward(self, x):
            m = x.mean(dim=(2, 3))
            return torch.cat([m, torch.ones_like(m[:, :1])], 1)

    res = evaluate.verify(Mean(), evaluate.load_pairs(str(tmp_path), folds=2), (112, 112), crop=0.5)
    assert set(res) >= {"accuracy", "accuracy_std", "tar@far=0.001", "auc", "fold_accuracy"}
    assert 0.0 <= res["accuracy"] <= 1.0 and res["pairs"] == 4
