"""DiscoFaceGAN's generator: the StyleGAN (v1) mapping and synthesis networks at 256x256.

Sizes follow the released network: 286 inputs (coefficients 254 + noise 32, not normalised),
8 mapping layers of 512 with learning-rate multiplier 0.01, W of 512 broadcast to 14 style layers,
feature maps min(8192 / 2^stage, 512), a learned 4x4 constant, per-layer noise images, and
ToRGB at 256. ``variable_specs`` lists every stored variable with its shape; conversion checks
a snapshot against it and this module reads the same names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator

import torch

from .. import layout
from . import ops


@dataclass(frozen=True)
class GeneratorConfig:
    latent_size: int = layout.TOTAL  # the coefficient record is the network's input
    dlatent_size: int = 512
    mapping_layers: int = 8
    mapping_fmaps: int = 512
    mapping_lrmul: float = 0.01
    resolution: int = 256
    fmap_base: int = 8192
    fmap_max: int = 512
    num_channels: int = 3
    fused_min_resolution: int = 128  # up-sampling convs at and above this output size are fused

    @property
    def log2_res(self) -> int:
        return self.resolution.bit_length() - 1

    @property
    def num_layers(self) -> int:
        return self.log2_res * 2 - 2

    def nf(self, stage: int) -> int:
        return min(int(self.fmap_base / (2.0 ** stage)), self.fmap_max)

    def to_dict(self) -> dict:
        return asdict(self)


def _layer_specs(prefix: str, cout: int, dlatent: int, kernel: tuple[int, ...] | None) -> Iterator[tuple[str, tuple]]:
    if kernel is not None:
        yield f"{prefix}/weight", kernel
    yield f"{prefix}/Noise/weight", (cout,)
    yield f"{prefix}/bias", (cout,)
    yield f"{prefix}/StyleMod/weight", (dlatent, 2 * cout)
    yield f"{prefix}/StyleMod/bias", (2 * cout,)


def mapping_specs(cfg: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    specs = {}
    fan_in = cfg.latent_size
    for i in range(cfg.mapping_layers):
        fmaps = cfg.dlatent_size if i == cfg.mapping_layers - 1 else cfg.mapping_fmaps
        specs[f"Dense{i}/weight"] = (fan_in, fmaps)
        specs[f"Dense{i}/bias"] = (fmaps,)
        fan_in = fmaps
    return specs


def synthesis_specs(cfg: GeneratorConfig, with_unused: bool = False) -> dict[str, tuple[int, ...]]:
    """Variables the forward pass reads; ``with_unused`` adds ``lod`` and the lower-resolution ToRGBs."""
    specs: dict[str, tuple[int, ...]] = {}
    for i in range(cfg.num_layers):
        r = 2 ** (i // 2 + 2)
        specs[f"noise{i}"] = (1, 1, r, r)
    c = cfg.nf(1)
    specs["4x4/Const/const"] = (1, c, 4, 4)
    specs.update(_layer_specs("4x4/Const", c, cfg.dlatent_size, None))
    specs.update(_layer_specs("4x4/Conv", c, cfg.dlatent_size, (3, 3, c, c)))
    for res in range(3, cfg.log2_res + 1):
        cout = cfg.nf(res - 1)
        name = f"{2 ** res}x{2 ** res}"
        specs.update(_layer_specs(f"{name}/Conv0_up", cout, cfg.dlatent_size, (3, 3, c, cout)))
        specs.update(_layer_specs(f"{name}/Conv1", cout, cfg.dlatent_size, (3, 3, cout, cout)))
        c = cout
    lods = range(cfg.log2_res - 1) if with_unused else range(1)
    for lod in lods:
        res = cfg.log2_res - lod
        specs[f"ToRGB_lod{lod}/weight"] = (1, 1, cfg.nf(res - 1), cfg.num_channels)
        specs[f"ToRGB_lod{lod}/bias"] = (cfg.num_channels,)
    if with_unused:
        specs["lod"] = ()
    return specs


class _StyledLayer:
    """One conv (or the constant) + noise + bias + lrelu + instance norm + style modulation."""

    def __init__(self, t: dict[str, torch.Tensor], prefix: str, index: int, kind: str, fused: bool = False):
        self.index, self.kind, self.fused = index, kind, fused
        self.weight = ops.conv_weight(t[f"{prefix}/weight"]) if kind != "const" else None
        self.noise = t[f"noise{index}"]
        self.noise_weight = t[f"{prefix}/Noise/weight"]
        self.bias = t[f"{prefix}/bias"]
        self.style_weight = t[f"{prefix}/StyleMod/weight"]
        self.style_bias = t[f"{prefix}/StyleMod/bias"]

    def tensors(self) -> list[str]:
        return ["weight", "noise", "noise_weight", "bias", "style_weight", "style_bias"]

    def __call__(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.kind == "up":
            x = ops.blur2d(ops.upscale_conv2d(x, self.weight, self.fused))
        elif self.kind == "conv":
            x = ops.conv2d(x, self.weight)
        x = ops.apply_noise(x, self.noise, self.noise_weight)
        x = x + self.bias.to(x.dtype).view(1, -1, 1, 1)
        x = ops.leaky_relu(x)
        x = ops.instance_norm(x)
        return ops.style_mod(x, w, self.style_weight, self.style_bias)


class Generator:
    """Mapping + synthesis with the identity-only truncation DiscoFaceGAN samples with.

    ``mapping_tensors`` and ``synthesis_tensors`` are the stored variables under their local names
    (see ``mapping_specs``/``synthesis_specs``). Conv kernels are pre-scaled to OIHW once here; ``to`` moves
    and casts them (instance norm always runs in float32).
    """

    def __init__(self, cfg: GeneratorConfig, mapping_tensors: dict[str, torch.Tensor], synthesis_tensors: dict[str, torch.Tensor]):
        self.cfg = cfg
        self.mapping_layers = []
        for i in range(cfg.mapping_layers):
            self.mapping_layers.append([mapping_tensors[f"Dense{i}/weight"], mapping_tensors[f"Dense{i}/bias"]])
        t = synthesis_tensors
        self.const = t["4x4/Const/const"]
        self.layers = [_StyledLayer(t, "4x4/Const", 0, "const"), _StyledLayer(t, "4x4/Conv", 1, "conv")]
        for res in range(3, cfg.log2_res + 1):
            name = f"{2 ** res}x{2 ** res}"
            fused = 2 ** res >= cfg.fused_min_resolution
            self.layers.append(_StyledLayer(t, f"{name}/Conv0_up", res * 2 - 4, "up", fused))
            self.layers.append(_StyledLayer(t, f"{name}/Conv1", res * 2 - 3, "conv"))
        self.torgb_weight = ops.conv_weight(t["ToRGB_lod0/weight"], gain=1.0)
        self.torgb_bias = t["ToRGB_lod0/bias"]
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.memory_format = torch.contiguous_format

    def to(self, device: str | torch.device, dtype: torch.dtype = torch.float32, channels_last: bool = False) -> "Generator":
        """Move the weights; the mapping network stays float32 (its stored weights are ~100x large and cheap to run)."""
        device = torch.device(device)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.mapping_layers = [[w.to(device, torch.float32), b.to(device, torch.float32)] for w, b in self.mapping_layers]
        self.const = self.const.to(device, dtype)
        for layer in self.layers:
            for name in layer.tensors():
                value = getattr(layer, name)
                if value is None:
                    continue
                value = value.to(device, torch.float32 if name.startswith("style") else dtype)
                if value.dim() == 4 and name == "weight":
                    value = value.contiguous(memory_format=fmt)
                setattr(layer, name, value)
        self.torgb_weight = self.torgb_weight.to(device, dtype).contiguous(memory_format=fmt)
        self.torgb_bias = self.torgb_bias.to(device, dtype)
        self.device, self.dtype, self.memory_format = device, dtype, fmt
        return self

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """[B, 286] coefficients -> [B, 512] W (no input normalisation, lrelu after every layer)."""
        x = z.to(self.device, torch.float32)
        for w, b in self.mapping_layers:
            x = ops.leaky_relu(ops.dense(x, w, b, ops.ACT_GAIN, self.cfg.mapping_lrmul))
        return x

    def truncated_dlatents(
        self, coeffs: torch.Tensor, avg_w_id: torch.Tensor, psi: float = 0.7, cutoff: int = 8
    ) -> torch.Tensor:
        """[B, num_layers, 512]: w + (1 - psi) * (avg_w_id - w_id) on layers < cutoff, w elsewhere.

        ``w_id`` maps the identity coefficients alone (expression, pose, lighting and noise zero),
        so truncation pulls only the identity towards the average face and leaves the other
        factors as sampled.
        """
        coeffs = coeffs.to(self.device, torch.float32)
        id_only = torch.zeros_like(coeffs)
        id_only[:, layout.IDENTITY] = coeffs[:, layout.IDENTITY]
        both = self.mapping(torch.cat([coeffs, id_only], dim=0))
        w, w_id = both[: len(coeffs)], both[len(coeffs) :]
        L = self.cfg.num_layers
        ws = w[:, None, :].expand(-1, L, -1)
        avg = avg_w_id.to(self.device, torch.float32).reshape(L, -1)
        truncated = ws + (1.0 - psi) * (avg[None] - w_id[:, None, :])
        keep = (torch.arange(L, device=self.device) < cutoff).view(1, L, 1)
        return torch.where(keep, truncated, ws)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """[B, num_layers, 512] -> [B, 3, 256, 256] images in about [-1, 1] (NCHW, in ``self.dtype``)."""
        ws = ws.to(self.device, torch.float32)  # styles are computed in float32 whatever the activations' dtype
        x = self.const.expand(ws.shape[0], -1, -1, -1).contiguous(memory_format=self.memory_format)
        for layer in self.layers:
            x = layer(x, ws[:, layer.index])
        return ops.conv2d(x, self.torgb_weight) + self.torgb_bias.to(x.dtype).view(1, -1, 1, 1)
