"""Converting the official DiscoFaceGAN release into one safetensors file, and loading it back.

Inputs: the generator snapshot (``network-snapshot-020126.pkl``, a TensorFlow pickle of
``(G, D, Gs)``; ``Gs`` is converted) and the decoder checkpoints
(``vae/weights/{id,exp,gamma,rot}/stage1_epoch_395.ckpt.*``). The output holds every variable the
renderer reads, under ``mapping/``, ``synthesis/`` and ``decoder/<name>/``, stored exactly as
released, plus ``average_w_id`` (the average identity W the truncation pulls towards), computed
once here the way the reference computes it so no run has to, and the configuration as JSON in
the metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from synthface.errors import SynthError

from . import decoders as dec
from . import legacy
from .networks import Generator, GeneratorConfig, mapping_specs, synthesis_specs
from .tfcheckpoint import Checkpoint

FORMAT = "synthface-discofacegan"
FORMAT_VERSION = "1"
CHECKPOINT = "stage1_epoch_395.ckpt"
AVERAGE_SAMPLES = 50000  # the reference averages 50,000 identities
AVERAGE_SEED = 1  # ... drawn with np.random.seed(1)
TRUNCATION_PSI = 0.7
TRUNCATION_CUTOFF = 8


@dataclass
class Weights:
    cfg: GeneratorConfig
    mapping: dict[str, np.ndarray]
    synthesis: dict[str, np.ndarray]
    decoders: dict[str, dec.CoeffDecoder]
    average_w_id: np.ndarray  # [num_layers, 512]
    metadata: dict[str, str]

    def generator(self) -> Generator:
        return Generator(self.cfg, _as_torch(self.mapping), _as_torch(self.synthesis))


def _as_torch(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


def _checked(source: str, variables: dict[str, np.ndarray], specs: dict[str, tuple[int, ...]], what: str) -> dict[str, np.ndarray]:
    out = {}
    for name, shape in specs.items():
        if name not in variables:
            raise SynthError(f"{source}: variable {what}{name} is missing; is this the DiscoFaceGAN 256x256 generator?")
        value = np.asarray(variables[name])
        if tuple(value.shape) != tuple(shape):
            raise SynthError(
                f"{source}: variable {what}{name} has shape {list(value.shape)}, expected {list(shape)}; "
                "is this the DiscoFaceGAN 256x256 generator?"
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise SynthError(f"{source}: variable {what}{name} has dtype {value.dtype}, expected float32")
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def read_generator(pickle_path: str | Path) -> tuple[GeneratorConfig, dict[str, np.ndarray], dict[str, np.ndarray]]:
    nets = legacy.load_network_pickle(pickle_path)
    gs = legacy.generator_of(nets, pickle_path)
    mapping = legacy.component(gs, "mapping", pickle_path)
    synthesis = legacy.component(gs, "synthesis", pickle_path)
    kwargs = {**gs.static_kwargs, **synthesis.static_kwargs}
    resolution = int(kwargs.get("resolution", 256))
    cfg = GeneratorConfig(resolution=resolution)
    if cfg.resolution != 256 or cfg.num_layers != 14:
        raise SynthError(f"{pickle_path}: generator resolution {resolution}; DiscoFaceGAN's is 256x256")
    lod = synthesis.variables.get("lod")
    if lod is not None and float(lod) != 0.0:
        raise SynthError(f"{pickle_path}: snapshot taken while growing (lod {float(lod)}); convert a final snapshot")
    m = _checked(str(pickle_path), mapping.variables, mapping_specs(cfg), "G_mapping/")
    s = _checked(str(pickle_path), synthesis.variables, synthesis_specs(cfg), "G_synthesis/")
    return cfg, m, s


def read_decoders(vae_dir: str | Path) -> dict[str, dict[str, np.ndarray]]:
    return {name: read_decoder(vae_dir, name) for name in dec.DECODERS}


def read_decoder(vae_dir: str | Path, name: str) -> dict[str, np.ndarray]:
    """One decoder's variables (``name`` in ``decoders.DECODERS``) from DiscoFaceGAN's vae/weights."""
    prefix = Path(vae_dir) / name / CHECKPOINT
    ckpt = Checkpoint(prefix)
    variables = {}
    for local, shape in dec.variable_specs(name).items():
        full = dec.checkpoint_name(name, local)
        if full not in ckpt:
            raise SynthError(f"{prefix}: variable {full} is missing; pass DiscoFaceGAN's vae/weights directory")
        entry = ckpt.entries[full]
        if tuple(entry.shape) != shape:
            raise SynthError(f"{prefix}: variable {full} has shape {list(entry.shape)}, expected {list(shape)}")
        variables[local] = ckpt.read(full)
    return _checked(str(prefix), variables, dec.variable_specs(name), f"{name}/stage1/decoder/")


def average_w_id(
    generator: Generator,
    id_decoder: dec.CoeffDecoder,
    samples: int = AVERAGE_SAMPLES,
    seed: int = AVERAGE_SEED,
    chunk: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Mean W of decoded random identities with zero expression, pose and lighting and random noise.

    The reference seeds numpy's legacy generator and, per sample, draws a 179-value z then 32 noise
    values; one [n, 211] draw from the same generator yields exactly that stream. Only the identity
    block of z is used. Returns [num_layers, 512] (W broadcast to every layer, as the reference saves it).
    """
    if samples < 1:
        raise SynthError(f"the average identity needs at least one sample, got {samples}")
    rs = np.random.RandomState(seed)
    total = np.zeros(generator.cfg.dlatent_size, dtype=np.float64)
    done = 0
    with torch.inference_mode():
        while done < samples:
            n = min(chunk, samples - done)
            draw = rs.normal(size=(n, dec.Z_SIZE + 32))
            z_id = draw[:, :128].astype(np.float32)
            noise = draw[:, dec.Z_SIZE :].astype(np.float32)
            coeffs = np.concatenate([id_decoder(z_id), np.zeros((n, 64 + 3 + 27), np.float32), noise], axis=1)
            w = generator.mapping(torch.from_numpy(coeffs))
            total += w.double().sum(dim=0).cpu().numpy()
            done += n
            if progress:
                progress(n)
    mean = (total / samples).astype(np.float32)
    return np.tile(mean[None], (generator.cfg.num_layers, 1))


def read_average_text(path: str | Path, cfg: GeneratorConfig) -> np.ndarray:
    """The reference's ``*-average_w_id.txt`` (np.savetxt of [14, 512], or 7168 values)."""
    try:
        values = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise SynthError(f"cannot read average W file {path}: {exc}") from None
    if values.size != cfg.num_layers * cfg.dlatent_size:
        raise SynthError(f"{path}: {values.size} values, expected {cfg.num_layers} x {cfg.dlatent_size}")
    return values.reshape(cfg.num_layers, cfg.dlatent_size).astype(np.float32)


def convert(
    pickle_path: str | Path,
    vae_dir: str | Path,
    out: str | Path,
    average_samples: int = AVERAGE_SAMPLES,
    average_seed: int = AVERAGE_SEED,
    average_file: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    cfg, mapping, synthesis = read_generator(pickle_path)
    decoder_vars = read_decoders(vae_dir)
    if average_file is not None:
        avg = read_average_text(average_file, cfg)
        avg_meta = {"source": Path(average_file).name}
    else:
        generator = Generator(cfg, _as_torch(mapping), _as_torch(synthesis))
        id_decoder = dec.CoeffDecoder.from_tensors(decoder_vars["id"])
        avg = average_w_id(generator, id_decoder, average_samples, average_seed, progress=progress)
        avg_meta = {"samples": average_samples, "seed": average_seed}
    return save(out, cfg, mapping, synthesis, decoder_vars, avg, avg_meta, Path(pickle_path).name)


def save(
    out: str | Path,
    cfg: GeneratorConfig,
    mapping: dict[str, np.ndarray],
    synthesis: dict[str, np.ndarray],
    decoder_vars: dict[str, dict[str, np.ndarray]],
    avg: np.ndarray,
    avg_meta: dict,
    source: str,
) -> Path:
    """Write the converted file atomically (a partly written file never has the final name)."""
    tensors = {f"mapping/{k}": v for k, v in mapping.items()}
    tensors.update({f"synthesis/{k}": v for k, v in synthesis.items()})
    for name, variables in decoder_vars.items():
        tensors.update({f"decoder/{name}/{k}": v for k, v in variables.items()})
    tensors["average_w_id"] = np.ascontiguousarray(avg, dtype=np.float32)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
        "average_w_id": json.dumps(avg_meta, sort_keys=True),
        "truncation": json.dumps({"psi": TRUNCATION_PSI, "cutoff": TRUNCATION_CUTOFF}),
        "source": json.dumps({"generator": source, "decoders": CHECKPOINT}),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(out)
    return out


def load(path: str | Path) -> Weights:
    """Read a converted file, checking every variable the renderer needs."""
    path = Path(path)
    if not path.is_file():
        raise SynthError(
            f"DiscoFaceGAN weights {path} not found: create them with "
            "`synth convert-weights --pickle network-snapshot-020126.pkl --vae-dir vae/weights --out FILE`"
        )
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise SynthError(f"cannot read DiscoFaceGAN weights {path}: {exc}") from None
    if metadata.get("format") != FORMAT:
        raise SynthError(f"{path} is not a converted DiscoFaceGAN file (run `synth convert-weights` to make one)")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise SynthError(f"{path} has format version {metadata.get('format_version')}; convert the weights again")
    try:
        cfg = GeneratorConfig(**json.loads(metadata["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise SynthError(f"{path}: unreadable config in metadata ({exc}); convert the weights again") from None

    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    mapping = _checked(str(path), group("mapping/"), mapping_specs(cfg), "mapping/")
    synthesis = _checked(str(path), group("synthesis/"), synthesis_specs(cfg), "synthesis/")
    decoders = {
        name: dec.CoeffDecoder.from_tensors(_checked(str(path), group(f"decoder/{name}/"), dec.variable_specs(name), f"decoder/{name}/"))
        for name in dec.DECODERS
    }
    avg = _checked(str(path), tensors, {"average_w_id": (cfg.num_layers, cfg.dlatent_size)}, "")["average_w_id"]
    return Weights(cfg, mapping, synthesis, decoders, avg, metadata)
