"""Where the five alignment landmarks fall in DiscoFaceGAN's 256x256 output, and the fixed crop to ArcFace.

DiscoFaceGAN's training images were aligned to a 3D template, not detected per image. The
preprocessing fits the five landmarks of each photo to the standard 3D landmarks of
Deep3DFaceReconstruction (eye centres, nose tip, mouth corners; decimetres, BFM frame) with an
orthographic least-squares similarity and crops 512x512 around them. Deep3DFaceReconstruction then
reconstructs the face with a camera of focal length 1015 px (at 224 px, so f = 1015 * 512 / 224 in
the 512 crop) 10 units from the origin, which draws the head, at depth t_z, with f / (10 - t_z) px
per unit. The GAN crop cancels the reconstructed translation, rescales by
1.22 * 224 / 512 * (10 - t_z) / 10 and cuts 256x256 around the centre, so t_z cancels and a template
point (X, Y) lands at (128 + k X, 128 - k Y) with k = 1015 * 1.22 / 10 = 123.830 px per unit.
For a frontal face those five points are where the generator draws the landmarks, so one
similarity transform, fitted by least squares from them to the ArcFace template of
``synthface.generator.align``, aligns every output: at 112x112 the fit leaves 0.93 px of residual
at the worst landmark (the left eye; 0.68 px RMS over the five) and the crop spans about 234 of the
256 pixels. Rotated heads move their landmarks, as with any fixed crop; the reported landmarks are
the frontal points mapped into the crop.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..align import apply, similarity, template_for

# Deep3DFaceReconstruction's standard 3D landmarks (left eye, right eye, nose tip, mouth corners).
LM3D = np.array(
    [
        [-0.31148657, 0.29036078, 0.13377953],
        [0.30979887, 0.28972036, 0.13179526],
        [0.0032535, -0.04617932, 0.55244243],
        [-0.25216928, -0.38133916, 0.22405732],
        [0.2484662, -0.38128236, 0.22235769],
    ]
)
FOCAL, CAMERA_DISTANCE, GAN_RESCALE = 1015.0, 10.0, 1.22  # Deep3DFaceReconstruction's camera; DiscoFaceGAN's crop
PIXELS_PER_UNIT = FOCAL * GAN_RESCALE / CAMERA_DISTANCE  # 123.830
SOURCE_SIZE = 256


def source_landmarks() -> np.ndarray:
    """[5, 2] pixel positions (x, y) of the landmarks of a frontal face in the 256x256 output."""
    c = SOURCE_SIZE / 2.0
    return np.stack([c + PIXELS_PER_UNIT * LM3D[:, 0], c - PIXELS_PER_UNIT * LM3D[:, 1]], axis=1)


def to_arcface(size, resolution: int = SOURCE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(2x3 output-from-source matrix, [5, 2] landmarks in the output) for an (H, W) ArcFace crop."""
    src = source_landmarks() * (resolution / SOURCE_SIZE)
    m = similarity(src, template_for(size))
    return m, apply(m, src)


def warp(images: torch.Tensor, matrix: np.ndarray, size: tuple[int, int], fill: float = -1.0) -> torch.Tensor:
    """Bilinear warp of NCHW images by the 2x3 source->output pixel transform (pixel centres at integers)."""
    n, _, hin, win = images.shape
    h, w = size
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    src = np.einsum("ij,hwj->hwi", inv, np.stack([xs, ys, np.ones_like(xs)], axis=-1))
    gx = (2.0 * src[..., 0] + 1.0) / win - 1.0
    gy = (2.0 * src[..., 1] + 1.0) / hin - 1.0
    grid = torch.from_numpy(np.stack([gx, gy], axis=-1)).to(images.device, images.dtype)
    grid = grid.unsqueeze(0).expand(n, -1, -1, -1)
    out = F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill
