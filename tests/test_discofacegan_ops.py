"""Each DiscoFaceGAN op against a plain numpy computation of what the TensorFlow graph does."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synthface.generator.discofacegan import ops

RNG = np.random.default_rng(1234)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def np_conv_same(x: np.ndarray, w_hwio: np.ndarray) -> np.ndarray:
    """'SAME' stride-1 cross-correlation, NCHW input, HWIO kernel, by explicit shifted sums."""
    kh, kw = w_hwio.shape[:2]
    ph, pw = kh // 2, kw // 2
    n, c, h, wd = x.shape
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), np.float64)
    xp[:, :, ph : ph + h, pw : pw + wd] = x
    out = np.zeros((n, w_hwio.shape[3], h, wd), np.float64)
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nchw,co->nohw", xp[:, :, i : i + h, j : j + wd], w_hwio[i, j])
    return out


def np_conv_transpose_same(x: np.ndarray, w4_hwoi: np.ndarray) -> np.ndarray:
    """tf.nn.conv2d_transpose(stride 2, 'SAME', output 2H x 2W) with a 4x4 kernel, by scattering."""
    n, c, h, w = x.shape
    cout = w4_hwoi.shape[2]
    out = np.zeros((n, cout, 2 * h + 4, 2 * w + 4), np.float64)  # margin, cropped below
    for ky in range(4):
        for kx in range(4):
            contrib = np.einsum("nihw,oi->nohw", x, w4_hwoi[ky, kx])
            # input pixel p lands on output 2p + k - 1 (pad_before = 1); +2 for the margin
            out[:, :, ky + 1 : ky + 1 + 2 * h : 2, kx + 1 : kx + 1 + 2 * w : 2] += contrib
    return out[:, :, 2 : 2 + 2 * h, 2 : 2 + 2 * w]


def test_wscale_is_he_std_times_lrmul():
    assert ops.wscale(512, math.sqrt(2), 0.01) == pytest.approx(math.sqrt(2) / math.sqrt(512) * 0.01)
    assert ops.wscale(9 * 64, 1.0) == pytest.approx(1 / 24)


def test_dense_equalized_lr_with_multiplier():
    x = RNG.standard_normal((5, 286))
    w = RNG.standard_normal((286, 512)) * 100
    b = RNG.standard_normal(512)
    coef = math.sqrt(2) / math.sqrt(286) * 0.01
    expected = x @ (w * coef) + b * 0.01
    got = ops.dense(_t(x), _t(w), _t(b), math.sqrt(2), 0.01).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_conv2d_equalized_lr():
    x = RNG.standard_normal((2, 6, 9, 7))
    w = RNG.standard_normal((3, 3, 6, 5))
    expected = np_conv_same(x, w) * (math.sqrt(2) / math.sqrt(9 * 6))
    got = ops.conv2d(_t(x), ops.conv_weight(_t(w))).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_torgb_1x1_gain_one():
    x = RNG.standard_normal((2, 8, 5, 5))
    w = RNG.standard_normal((1, 1, 8, 3))
    expected = np.einsum("nchw,co->nohw", x, w[0, 0]) / math.sqrt(8)
    got = ops.conv2d(_t(x), ops.conv_weight(_t(w), gain=1.0)).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_upscale_is_nearest_blocks():
    x = RNG.standard_normal((2, 3, 4, 5))
    expected = np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)
    np.testing.assert_array_equal(ops.upscale2d(_t(x)).numpy(), expected.astype(np.float32))


def test_blur_is_normalised_121_with_zero_padding():
    x = RNG.standard_normal((2, 4, 6, 5))
    k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            expected += k[i, j] * xp[:, :, i : i + 6, j : j + 5]
    np.testing.assert_allclose(ops.blur2d(_t(x)).double().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_fused_upscale_conv_equals_tf_transposed_conv():
    """The graph's fused path: 4x4 kernel = sum of the 4 shifted 3x3 kernels, conv2d_transpose stride 2."""
    x = RNG.standard_normal((2, 5, 6, 4))
    w = RNG.standard_normal((3, 3, 5, 7))  # HWIO as stored
    coef = math.sqrt(2) / math.sqrt(9 * 5)
    wt = np.transpose(w * coef, (0, 1, 3, 2))  # [k, k, out, in]
    wt = np.pad(wt, ((1, 1), (1, 1), (0, 0), (0, 0)))
    w4 = wt[1:, 1:] + wt[:-1, 1:] + wt[1:, :-1] + wt[:-1, :-1]
    expected = np_conv_transpose_same(x, w4)
    got = ops.upscale_conv2d(_t(x), ops.conv_weight(_t(w)), fused=True).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_unfused_upscale_conv_uses_kernel_as_stored():
    x = RNG.standard_normal((1, 4, 4, 4))
    w = RNG.standard_normal((3, 3, 4, 3))
    up = np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)
    expected = np_conv_same(up, w) * (math.sqrt(2) / math.sqrt(9 * 4))
    got = ops.upscale_conv2d(_t(x), ops.conv_weight(_t(w)), fused=False).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    flipped = ops.upscale_conv2d(_t(x), ops.conv_weight(_t(w)), fused=True).double().numpy()
    assert not np.allclose(flipped, expected, atol=1e-3)  # the two paths really differ


def test_instance_norm():
    x = RNG.standard_normal((3, 4, 5, 6)) * 3 + 2
    mu = x.mean(axis=(2, 3), keepdims=True)
    y = x - mu
    expected = y / np.sqrt((y**2).mean(axis=(2, 3), keepdims=True) + 1e-8)
    np.testing.assert_allclose(ops.instance_norm(_t(x)).double().numpy(), expected, rtol=1e-4, atol=1e-5)
    # a constant map divides 0 by sqrt(eps) instead of failing
    assert torch.equal(ops.instance_norm(torch.ones(1, 1, 4, 4)), torch.zeros(1, 1, 4, 4))


def test_style_mod():
    x = RNG.standard_normal((2, 6, 3, 3))
    w = RNG.standard_normal((2, 16))
    sw = RNG.standard_normal((16, 12))
    sb = RNG.standard_normal(12)
    style = w @ (sw / math.sqrt(16)) + sb
    expected = x * (style[:, :6, None, None] + 1) + style[:, 6:, None, None]
    got = ops.style_mod(_t(x), _t(w), _t(sw), _t(sb)).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_noise_is_shared_image_scaled_per_channel():
    x = RNG.standard_normal((3, 4, 5, 5))
    noise = RNG.standard_normal((1, 1, 5, 5))
    weight = RNG.standard_normal(4)
    expected = x + noise * weight[None, :, None, None]
    np.testing.assert_allclose(ops.apply_noise(_t(x), _t(noise), _t(weight)).double().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_leaky_relu_slope():
    x = torch.tensor([-2.0, -0.5, 0.0, 3.0])
    assert ops.leaky_relu(x).tolist() == pytest.approx([-0.4, -0.1, 0.0, 3.0])


def test_to_uint8_clips_and_truncates_to_nhwc():
    x = torch.tensor([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0]).view(1, 1, 2, 3).expand(1, 3, 2, 3)
    out = ops.to_uint8(x)
    assert out.shape == (1, 2, 3, 3) and out.dtype == torch.uint8
    # (x + 1) * 127.5 = -63.75, 0, 127.5, 254.87, 255, 382.5 -> clip, then floor
    assert out[0, :, :, 0].flatten().tolist() == [0, 0, 127, 254, 255, 255]
