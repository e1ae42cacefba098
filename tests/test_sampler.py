"""Coefficient layout, sampling determinism, identity-mixup labels, and configuration errors."""

from __future__ import annotations

import numpy as np
import pytest

from synthface.errors import SynthError
from synthface.generator import layout, registry
from synthface.generator.sampler import SamplingConfig, Sampler, parse_mixup


def test_layout_sizes():
    assert layout.TOTAL == 286
    assert [layout.SIZES[n] for n in ("shape", "albedo", "expression", "pose", "lighting", "noise")] == [
        80, 80, 64, 3, 27, 32,
    ]
    assert layout.IDENTITY == slice(0, 160)
    rec = layout.join(pose=np.array([0.1, 0.2, 0.3], np.float32))
    assert rec.shape == (286,) and np.allclose(layout.split(rec)["pose"], [0.1, 0.2, 0.3])


def test_same_seed_same_records_in_any_batch():
    cfg = SamplingConfig()
    pairs = [(c, k) for c in range(5) for k in range(3)]
    a = Sampler(cfg, 10, seed=7).batch(pairs).coeffs
    b = Sampler(cfg, 10, seed=7).batch(pairs[::-1]).coeffs[::-1]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, Sampler(cfg, 10, seed=8).batch(pairs).coeffs)


def test_mixup_labels():
    sb = Sampler(SamplingConfig(mixup="reference"), 20, seed=1).batch([(c, k) for c in range(20) for k in range(5)])
    assert (sb.partner != sb.cls).all() and (sb.partner >= 0).all()
    for b in range(len(sb)):
        label = sb.soft_label(b)
        assert abs(sum(w for _, w in label) - 1.0) < 1e-6
        assert label[0] == [int(sb.cls[b]), float(sb.phi[b])]
    assert set(np.round(sb.phi, 6)) <= set(parse_mixup("reference"))


def test_phi_one_equals_no_mixup_in_coefficients_and_pixels():
    from synthface.generator.morphable import MorphableBackend

    pairs = [(c, k) for c in range(6) for k in range(4)]
    mixed = Sampler(SamplingConfig(mixup=[1.0]), 6, seed=3).batch(pairs)
    plain = Sampler(SamplingConfig(mixup="off"), 6, seed=3).batch(pairs)
    assert (mixed.phi == 1.0).all() and (plain.partner == -1).all()
    assert np.array_equal(mixed.coeffs, plain.coeffs)
    backend = MorphableBackend()
    assert np.array_equal(backend.render(mixed.coeffs[:4]).images, backend.render(plain.coeffs[:4]).images)
    # And a real mixup changes the identity part only.
    real = Sampler(SamplingConfig(mixup=[0.6]), 6, seed=3).batch(pairs)
    rest = np.r_[160:286]
    assert np.array_equal(real.coeffs[:, rest], plain.coeffs[:, rest])
    assert not np.array_equal(real.coeffs[:, :160], plain.coeffs[:, :160])


@pytest.mark.parametrize(
    "make",
    [
        lambda: Sampler(SamplingConfig(), num_classes=-3, seed=0),
        lambda: Sampler(SamplingConfig(), 10, seed=0).batch([(0, -1)]),
        lambda: SamplingConfig(mixup=[0.5, 1.2]),
        lambda: SamplingConfig(mixup="-0.1,1.0"),
        lambda: SamplingConfig(factors="hairstyle"),
        lambda: SamplingConfig(yaw_range=(30, -30)),
        lambda: registry.create("no-such-generator"),
        lambda: registry.create("morphable", colour="blue"),
    ],
    ids=["negative-ids", "negative-image", "phi-above-1", "phi-below-0", "factor-mode", "yaw-range",
         "unknown-backend", "unknown-option"],
)
def test_bad_configuration_raises_one_clear_error(make):
    with pytest.raises(SynthError) as err:
        make()
    message = str(err.value)
    assert message and "\n" not in message


def test_default_light_comes_mostly_from_above_and_variety_scales_it():
    from synthface.generator.sampler import LIGHT_MEAN, GaussianPrior

    def draws(variety):
        prior = GaussianPrior(SamplingConfig(lighting_variety=variety))
        out = np.stack([prior.lighting(np.random.default_rng(i)) for i in range(4000)])
        assert out.shape == (4000, layout.SIZES["lighting"]) and out.dtype == np.float32
        return out.reshape(-1, 3, 9)

    sh = draws(1.0)
    # Coefficient 1 multiplies -n_y: negative means the light falls on upward-facing surfaces.
    assert 0.9 < (sh[:, :, 1].mean(axis=1) < 0).mean() < 0.99
    np.testing.assert_allclose(sh.mean(axis=(0, 1)), LIGHT_MEAN, atol=0.01)
    assert 0.02 < np.abs(sh[:, 0, 0] - sh[:, 2, 0]).mean() < 0.2  # warm or cool: red and blue ambient differ
    np.testing.assert_allclose(draws(2.0).mean(axis=(0, 1))[1:4], 2 * np.array(LIGHT_MEAN[1:4]), atol=0.02)
    assert not draws(0.0).any()  # flat white ambient
