"""The layer arithmetic of DiscoFaceGAN's StyleGAN (v1) generator, as the TensorFlow graph computes it.

Weights are kept in the layout and scale they are stored in (TensorFlow HWIO / [in, out], before the
equalized-learning-rate coefficient), and each op applies the run-time scaling itself, so the
converted file stays a byte-for-byte copy of the stored variables and every scale factor is visible
here. Activations are NCHW tensors (memory format is the caller's choice).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
ACT_GAIN = math.sqrt(2.0)  # He gain used with leaky ReLU throughout
NORM_EPS = 1e-8
BLUR_TAPS = (1.0, 2.0, 1.0)


def wscale(fan_in: int, gain: float = ACT_GAIN, lrmul: float = 1.0) -> float:
    """Run-time multiplier of a stored weight: He std times the learning-rate multiplier."""
    return gain / math.sqrt(fan_in) * lrmul


def dense(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, gain: float = ACT_GAIN, lrmul: float = 1.0) -> torch.Tensor:
    """Equalized-LR fully connected layer; ``weight`` is stored [in, out], ``bias`` is scaled by ``lrmul`` too."""
    y = x @ (weight * wscale(weight.shape[0], gain, lrmul)).to(x.dtype)
    if bias is not None:
        y = y + (bias * lrmul).to(x.dtype)
    return y


def conv_weight(weight: torch.Tensor, gain: float = ACT_GAIN) -> torch.Tensor:
    """Stored HWIO kernel -> scaled OIHW kernel for ``F.conv2d``."""
    kh, kw, cin, _ = weight.shape
    return weight.permute(3, 2, 0, 1) * wscale(kh * kw * cin, gain)


def conv2d(x: torch.Tensor, weight_oihw: torch.Tensor) -> torch.Tensor:
    """'SAME' stride-1 convolution (cross-correlation, like ``tf.nn.conv2d``)."""
    return F.conv2d(x, weight_oihw.to(x.dtype), padding=weight_oihw.shape[-1] // 2)


def upscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour up-sampling: every pixel becomes a factor x factor block."""
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def upscale_conv2d(x: torch.Tensor, weight_oihw: torch.Tensor, fused: bool) -> torch.Tensor:
    """Up-sample x2 then 3x3 convolution.

    The graph fuses the two at output resolutions >= 128 into a stride-2 transposed convolution
    whose 4x4 kernel is the sum of the four shifted copies of the 3x3 kernel; that equals nearest
    up-sampling followed by a convolution with the kernel flipped in both spatial axes. Below 128
    it up-samples and convolves with the kernel as stored.
    """
    if fused:
        weight_oihw = weight_oihw.flip(2, 3)
    return conv2d(upscale2d(x), weight_oihw)


def blur2d(x: torch.Tensor) -> torch.Tensor:
    """Depthwise [1, 2, 1] x [1, 2, 1] / 16 low-pass filter with zero 'SAME' padding."""
    taps = torch.tensor(BLUR_TAPS, dtype=torch.float32, device=x.device)
    kernel = torch.outer(taps, taps)
    kernel = (kernel / kernel.sum()).to(x.dtype)
    channels = x.shape[1]
    return F.conv2d(x, kernel.expand(channels, 1, 3, 3), padding=1, groups=channels)


def apply_noise(x: torch.Tensor, noise: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Add a [N or 1, 1, H, W] noise image scaled per channel by ``weight``."""
    return x + noise.to(x.dtype) * weight.to(x.dtype).view(1, -1, 1, 1)


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


def instance_norm(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Per-sample, per-channel normalisation over H and W, computed in float32 like the graph."""
    dtype = x.dtype
    x = x.float()
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)
    return x.to(dtype)


def style_mod(x: torch.Tensor, w: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """AdaIN-style modulation x * (scale + 1) + shift, with (scale, shift) = dense(w), gain 1.

    The style itself is computed in float32 (it is tiny) and only applied in the activations' dtype.
    """
    style = dense(w.float(), weight.float(), bias.float(), gain=1.0).to(x.dtype)
    channels = x.shape[1]
    scale = style[:, :channels].view(-1, channels, 1, 1)
    shift = style[:, channels:].view(-1, channels, 1, 1)
    return x * (scale + 1) + shift


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float NCHW -> uint8 NHWC by clip((x + 1) * 127.5, 0, 255) and truncation, as the reference does."""
    x = ((images.float() + 1.0) * 127.5).clamp_(0.0, 255.0)
    return x.to(torch.uint8).permute(0, 2, 3, 1)
