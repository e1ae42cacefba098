"""Image decoding and fitting to the network input, shared by the training loader and evaluation.

JPEG goes through simplejpeg (libjpeg-turbo, several times faster than PIL for 112x112 crops, which
is what keeps one loader process at thousands of images per second); other formats through PIL.
"""

from __future__ import annotations

import io

import numpy as np
import simplejpeg
from PIL import Image

from synthface.errors import SynthError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


# libjpeg-turbo's words for bytes that are damaged (as opposed to a JPEG flavour simplejpeg does not
# handle): PIL would decode such data without complaint, into an image with grey or smeared blocks.
_DAMAGED = ("corrupt jpeg data", "premature end", "bogus", "invalid", "huffman", "not a jpeg")


def decode(data: bytes) -> np.ndarray:
    """Encoded bytes -> [H, W, 3] uint8 RGB; ValueError for damaged JPEG bytes, never a partly grey image."""
    if data[:2] == b"\xff\xd8":
        try:
            return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=True, strict=True)
        except ValueError as exc:
            if any(word in str(exc).lower() for word in _DAMAGED):
                raise ValueError(f"damaged JPEG data: {exc}") from None
            # unusual JPEG flavours (e.g. CMYK): let PIL try
    with Image.open(io.BytesIO(data)) as im:
        return np.array(im.convert("RGB"))  # writable, like simplejpeg's (the loader hands it to torch)


def parse_crop(value) -> float:
    try:
        crop = float(value)
    except (TypeError, ValueError):
        raise SynthError(f"centre crop {value!r} must be a number in (0, 1], the fraction of each side kept") from None
    if not 0.0 < crop <= 1.0:
        raise SynthError(f"centre crop {crop} must be in (0, 1]: the fraction of each side kept before resizing")
    return crop


def fit(image: np.ndarray, size: tuple[int, int], crop: float = 1.0) -> np.ndarray:
    """Centre-crop ``crop`` of each side, then resize (bilinear, antialiased) to ``size`` (h, w).

    Images already of the input size are returned as they are when ``crop`` is 1: aligned
    crops (synthface builds, insightface .bin sets) need no resampling. For a centre crop of a
    different aspect ratio than ``size`` the crop is widened or narrowed to that ratio first, so
    faces are never stretched.
    """
    h, w = image.shape[:2]
    th, tw = size
    if crop >= 1.0 and (h, w) == (th, tw):
        return image
    ch = h * crop
    cw = ch * tw / th
    if cw > w * crop:
        cw = w * crop
        ch = cw * th / tw
    top, left = (h - ch) / 2.0, (w - cw) / 2.0
    with Image.fromarray(image) as im:
        out = im.resize((tw, th), Image.BILINEAR, box=(left, top, left + cw, top + ch), reducing_gap=None)
        return np.array(out)  # writable (see decode)


def to_tensor_batch(images, device=None):
    """uint8 NHWC -> float NCHW in [-1, 1], on ``device``; the (x - 127.5) / 127.5 of arcface_torch.

    Loaders hand over uint8 and normalisation happens here, on the training device: a quarter of
    the bytes to copy, and the arithmetic runs where it is cheapest.
    """
    import torch

    x = torch.as_tensor(images)
    if device is not None:
        x = x.to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float().sub_(127.5).div_(127.5)
