"""The discofacegan backend: truncation, sampling with identity mixup, determinism, batching, the CPU path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthface.errors import SynthError
from synthface.generator import layout, registry
from synthface.generator.align import ARCFACE_112, template_for
from synthface.generator.discofacegan import DiscoFaceGANBackend, DiscoFaceGANPrior, align, convert, ops
from synthface.generator.discofacegan.backend import load_weights
from synthface.generator.discofacegan.networks import GeneratorConfig
from synthface.generator.sampler import IDENTITY_STREAM, Sampler, SamplingConfig, generator_for

from tests import discofacegan_files as testing

SMALL = GeneratorConfig(resolution=64, fmap_base=256, fmap_max=32, fused_min_resolution=32)


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory):
    return testing.write_random_converted(tmp_path_factory.mktemp("dfg") / "small.safetensors", SMALL, seed=7)


@pytest.fixture(scope="module")
def full_weights(tmp_path_factory):
    return testing.write_random_converted(tmp_path_factory.mktemp("dfg") / "full.safetensors", seed=8, average_samples=8)


def _records(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, layout.TOTAL)) * 0.5).astype(np.float32)


def test_truncation_is_identity_only_and_layer_limited(small_weights):
    w = convert.load(small_weights)
    g = w.generator()
    avg = torch.from_numpy(w.average_w_id)
    z = torch.from_numpy(_records(3))
    with torch.inference_mode():
        got = g.truncated_dlatents(z, avg, psi=0.7, cutoff=8)
        plain = g.mapping(z)
        id_only = z.clone()
        id_only[:, 160:] = 0
        w_id = g.mapping(id_only)
    L = SMALL.num_layers
    assert got.shape == (3, L, 512)
    expected = plain[:, None] + 0.3 * (avg[None] - w_id[:, None])
    torch.testing.assert_close(got[:, :8], expected[:, :8], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got[:, 8:], plain[:, None].expand(-1, L - 8, -1))
    # psi = 1 switches truncation off; changing only non-identity inputs leaves w_id unchanged
    with torch.inference_mode():
        torch.testing.assert_close(g.truncated_dlatents(z, avg, psi=1.0), plain[:, None].expand(-1, L, -1))
        z2 = z.clone()
        z2[:, 160:] += 1.0
        delta = g.truncated_dlatents(z2, avg)[:, 0] - g.mapping(z2)
    torch.testing.assert_close(delta, (0.3 * (avg[0] - w_id)), rtol=1e-5, atol=1e-4)


def test_render_is_deterministic_and_batch_equivalent(small_weights):
    records = _records(8, seed=1)
    a = DiscoFaceGANBackend(image_size=64, weights=str(small_weights), batch_size=8)
    b = DiscoFaceGANBackend(image_size=64, weights=str(small_weights), batch_size=8)
    with torch.inference_mode():
        batch = a.images(records)
        singles = torch.cat([b.images(records[i : i + 1]) for i in range(8)])
    # equal within float32 round-off (batched and single convolutions sum in different orders)
    torch.testing.assert_close(batch, singles, rtol=1e-4, atol=1e-4)
    r1, r2 = a.render(records), b.render(records)
    np.testing.assert_array_equal(r1.images, r2.images)
    assert r1.images.shape == (8, 64, 64, 3) and r1.images.dtype == np.uint8
    assert r1.images.std() > 10  # different records give different, non-blank pictures
    assert not np.array_equal(r1.images[0], r1.images[1])
    np.testing.assert_allclose(r1.landmarks[0], template_for((64, 64)), atol=3.0)


def test_noise_inputs_are_the_stored_buffers(small_weights):
    backend = DiscoFaceGANBackend(image_size=64, weights=str(small_weights), align="none")
    records = _records(1, seed=2)
    first = backend.render(records).images
    layer = backend.generator.layers[3]
    layer.noise = layer.noise + 1.0
    assert not np.array_equal(first, backend.render(records).images)


def test_prior_decodes_z_and_mixup_mixes_decoded_identities(small_weights):
    weights = load_weights(str(small_weights))
    cfg = SamplingConfig(mixup=[0.6])
    prior = DiscoFaceGANBackend.prior(cfg, weights=str(small_weights))
    assert isinstance(prior, DiscoFaceGANPrior)
    sampler = Sampler(cfg, num_classes=5, seed=11, prior=prior)
    batch = sampler.batch([(0, 0), (0, 1), (3, 2)])
    for b in range(3):
        i, j, phi = int(batch.cls[b]), int(batch.partner[b]), float(batch.phi[b])
        assert phi == 0.6 and j != i
        expected = np.float32(0.6) * sampler.identity(i) + np.float32(0.4) * sampler.identity(j)
        np.testing.assert_allclose(batch.coeffs[b, layout.IDENTITY], expected, rtol=1e-6, atol=1e-6)
    # the identity is the decoder's output for a 128-value z drawn from the class's own stream
    rng = generator_for(11, IDENTITY_STREAM, 3)
    np.testing.assert_array_equal(sampler.identity(3), weights.decoders["id"](rng.standard_normal(128, dtype=np.float32)))


def test_prior_factors_are_decoded_and_pose_respects_ranges(small_weights):
    weights = load_weights(str(small_weights))
    cfg = SamplingConfig(yaw_range=(-5, 5), pitch_range=(-5, 5), roll_range=(-5, 5), expression_strength=0.0)
    prior = DiscoFaceGANPrior(cfg, weights)
    rng = np.random.default_rng(0)
    for _ in range(20):
        pose = np.degrees(prior.pose(rng))
        assert np.all(np.abs(pose) <= 5.0 + 1e-4)
    zero_exp = weights.decoders["exp"](np.zeros(32, np.float32))
    np.testing.assert_array_equal(prior.expression(rng), zero_exp)
    light = prior.lighting(np.random.default_rng(1))
    z = np.random.default_rng(1).standard_normal(16, dtype=np.float32)
    np.testing.assert_array_equal(light, weights.decoders["gamma"](z))


def test_full_size_cpu_path_through_the_registry(full_weights):
    """The 256x256 network of the released sizes, converted, rendered on CPU in fp32 (2 records)."""
    records = _records(2, seed=3)
    a = registry.create("discofacegan", image_size=112, device="cpu", weights=str(full_weights))
    r = a.render(records)
    assert r.images.shape == (2, 112, 112, 3) and r.images.dtype == np.uint8
    assert r.landmarks.shape == (2, 5, 2) and len(r.meta) == 2
    b = registry.create("discofacegan", image_size="112x96", weights=str(full_weights))
    np.testing.assert_allclose(b.landmarks, template_for((112, 96)), atol=4.0)
    with torch.inference_mode():
        singles = torch.cat([a.images(records[i : i + 1]) for i in range(2)])
    # rendered alone or together, pixels agree up to float32 round-off at a quantisation step
    diff = np.abs(ops.to_uint8(singles).numpy().astype(int) - r.images.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert a.describe()["name"] == "discofacegan"


def test_options_are_validated(small_weights, tmp_path):
    with pytest.raises(SynthError, match="weights=FILE"):
        DiscoFaceGANBackend(image_size=64)
    with pytest.raises(SynthError, match="not found"):
        DiscoFaceGANBackend(image_size=64, weights=str(tmp_path / "none.safetensors"))
    with pytest.raises(SynthError, match="align=none gives the raw 64x64 output"):
        DiscoFaceGANBackend(image_size=112, weights=str(small_weights), align="none")
    with pytest.raises(SynthError, match="truncation_psi"):
        DiscoFaceGANBackend(image_size=64, weights=str(small_weights), truncation_psi="lots")
    with pytest.raises(SynthError, match="no option"):
        DiscoFaceGANBackend(image_size=64, weights=str(small_weights), colour="red")
    backend = DiscoFaceGANBackend(image_size=64, weights=str(small_weights))
    with pytest.raises(SynthError, match="coefficient records"):
        backend.render(np.zeros((2, 10), np.float32))


def test_alignment_template_maps_onto_arcface():
    src = align.source_landmarks()
    # frontal-face landmarks of the 256 output: symmetric eyes above the nose above the mouth
    assert src[0, 0] < 128 < src[1, 0] and src[0, 1] < src[2, 1] < src[3, 1]
    # Deep3DFaceReconstruction's focal length 1015 at camera distance 10, times DiscoFaceGAN's rescale 1.22
    assert align.PIXELS_PER_UNIT == pytest.approx(1015 * 1.22 / 10, abs=1e-12)
    assert round(align.PIXELS_PER_UNIT, 3) == 123.83
    np.testing.assert_allclose(src[1] - src[0], 123.83 * (align.LM3D[1, :2] - align.LM3D[0, :2]) * [1, -1], rtol=1e-12)
    m, mapped = align.to_arcface((112, 112))
    assert np.abs(mapped - ARCFACE_112).max() < 4.0  # the derived points fit the template closely
    # the residual of the fit, per landmark: 0.93 px at the worst (left eye), 0.68 px RMS
    residual = np.hypot(*(mapped - ARCFACE_112).T)
    assert round(float(residual.max()), 2) == 0.93 and int(residual.argmax()) == 0
    assert round(float(np.sqrt((residual**2).mean())), 2) == 0.68
    assert 0.4 < np.hypot(*m[:, 0]) < 0.5  # about 234 of the 256 pixels end up in the 112 crop
    # the warp puts a source pixel where the matrix says
    img = torch.full((1, 1, 256, 256), -1.0)
    img[0, 0, 100, 60] = 1.0
    out = align.warp(img, np.array([[0.5, 0.0, 3.0], [0.0, 0.5, 7.0]]), (128, 128))
    y, x = np.unravel_index(int(out[0, 0].argmax()), (128, 128))
    assert (x, y) == (33, 57)


def test_reduced_precision_and_channels_last_paths(small_weights):
    """The GPU settings (bf16/fp16, channels-last) run on CPU too; they must track the fp32 result."""
    records = _records(2, seed=4)
    ref = DiscoFaceGANBackend(image_size=64, weights=str(small_weights), align="none")
    cl = DiscoFaceGANBackend(image_size=64, weights=str(small_weights), align="none", channels_last=True)
    bf = DiscoFaceGANBackend(image_size=64, weights=str(small_weights), align="none", precision="bf16", channels_last=True)
    assert bf.dtype == torch.bfloat16 and ref.dtype == torch.float32
    with torch.inference_mode():
        x_ref, x_cl, x_bf = ref.images(records), cl.images(records), bf.images(records)
    torch.testing.assert_close(x_cl, x_ref, rtol=1e-4, atol=1e-4)
    assert (x_bf - x_ref).abs().mean() < 0.05
    with pytest.raises(SynthError, match="precision"):
        DiscoFaceGANBackend(image_size=64, weights=str(small_weights), precision="fp8")
