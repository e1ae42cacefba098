"""The four VAE decoders that map DiscoFaceGAN's z-space latents to 3DMM coefficients (lambda).

Each is three ReLU dense layers and a linear output (``tf.layers.dense``, kernels stored [in, out]):

    identity   z 128 -> 512 x 3 -> 160 (shape 80 + texture 80)
    expression z  32 -> 256 x 3 -> 64
    lighting   z  16 -> 128 x 3 -> 27
    pose       z   3 ->  32 x 3 -> 3

They run in numpy float32: the sampler decodes one record at a time, where a few small matrix
products are cheaper than a framework call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import layout

# name in the checkpoints and converted file -> (z size, hidden width, output size); each decodes
# into one field of the coefficient record (identity is shape and albedo together)
DECODERS: dict[str, tuple[int, int, int]] = {
    "id": (128, 512, layout.IDENTITY_SIZE),
    "exp": (32, 256, layout.SIZES["expression"]),
    "gamma": (16, 128, layout.SIZES["lighting"]),
    "rot": (3, 32, layout.SIZES["pose"]),
}
LAYERS = ("fc0", "fc1", "fc2", "x_hat")
Z_ORDER = ("id", "exp", "gamma", "rot")  # order of the blocks in the reference's 179-value z
Z_SIZE = sum(v[0] for v in DECODERS.values())  # 179


def variable_specs(name: str) -> dict[str, tuple[int, ...]]:
    """Local variable names (``fc0/kernel`` ...) and shapes of one decoder."""
    z, hidden, out = DECODERS[name]
    specs = {}
    fan_in = z
    for layer in LAYERS:
        fmaps = out if layer == "x_hat" else hidden
        specs[f"{layer}/kernel"] = (fan_in, fmaps)
        specs[f"{layer}/bias"] = (fmaps,)
        fan_in = fmaps
    return specs


def checkpoint_name(name: str, local: str) -> str:
    """Where the reference's checkpoints keep a decoder variable."""
    return f"{name}/stage1/decoder/{local}"


@dataclass
class CoeffDecoder:
    kernels: list[np.ndarray]
    biases: list[np.ndarray]

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> "CoeffDecoder":
        return cls(
            kernels=[np.ascontiguousarray(tensors[f"{l}/kernel"], dtype=np.float32) for l in LAYERS],
            biases=[np.ascontiguousarray(tensors[f"{l}/bias"], dtype=np.float32) for l in LAYERS],
        )

    @property
    def z_size(self) -> int:
        return self.kernels[0].shape[0]

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """[..., z] -> [..., coefficients], float32."""
        y = np.asarray(z, dtype=np.float32)
        last = len(self.kernels) - 1
        for i, (k, b) in enumerate(zip(self.kernels, self.biases)):
            y = y @ k + b
            if i < last:
                y = np.maximum(y, np.float32(0.0))
        return y.astype(np.float32, copy=False)
