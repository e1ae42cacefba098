"""The ArcFace template, similarity fitting, and that rendered faces land on the template."""

from __future__ import annotations

import numpy as np
import pytest

from synthface.generator import layout
from synthface.generator.align import ARCFACE_112, apply, similarity, template_for


def test_template_sizes():
    assert np.allclose(template_for(112), ARCFACE_112)
    t96 = template_for("112x96")
    assert np.allclose(t96[:, 0], ARCFACE_112[:, 0] - 8.0) and np.allclose(t96[:, 1], ARCFACE_112[:, 1])
    assert np.allclose(template_for(256), ARCFACE_112 * 256 / 112)


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(5, 2))
    angle, scale, shift = 0.3, 2.5, np.array([10.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    m = similarity(src, dst)
    assert np.allclose(m[:, :2], rot) and np.allclose(m[:, 2], shift)
    assert np.allclose(apply(m, src), dst)
    with pytest.raises(ValueError):
        similarity(np.zeros((5, 2)), dst)


@pytest.mark.parametrize("size", [112, "112x96", 160])
def test_rendered_landmarks_sit_on_the_template_at_zero_pose(size):
    from synthface.generator.morphable import MorphableBackend

    backend = MorphableBackend(image_size=size)
    recs = layout.empty(3)
    recs[1, layout.SLICES["noise"]] = 1.0  # another camera distance and background
    recs[2, layout.IDENTITY] = np.random.default_rng(0).standard_normal(160)  # another person
    out = backend.render(recs)
    err = np.linalg.norm(out.landmarks - template_for(size)[None].astype(np.float32), axis=-1)
    scale = template_for(size)[1, 0] - template_for(size)[0, 0]
    assert err[:2].max() < 1.5 * scale / 35.2, err
    # Another person's proportions differ from the template's (as real faces do); the
    # least-squares fit still keeps every point within a few pixels.
    assert err[2].max() < 4.0 * scale / 35.2, err
    assert all(m["visible"] == [True] * 5 for m in out.meta)
