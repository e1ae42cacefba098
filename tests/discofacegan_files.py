"""Writers of files in the official release formats, filled with random values.

The official weights are not redistributable, so the tests (and ``bench/bench_discofacegan.py``)
build stand-ins: a TensorFlow checkpoint (``.index`` SSTable + ``.data`` shard) and a StyleGAN
network pickle whose classes resolve to ``dnnlib.tflib.network.Network`` exactly like the
released snapshot's, with the real variable names and shapes. The checkpoint writer leaves the
block checksums zero (the reader here does not check them; TensorFlow would).
"""

from __future__ import annotations

import contextlib
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np

from synthface.generator.discofacegan import decoders as dec
from synthface.generator.discofacegan.networks import GeneratorConfig, mapping_specs, synthesis_specs
from synthface.generator.discofacegan.tfcheckpoint import DTYPE_CODES, TABLE_MAGIC


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint((number << 3) | wire)
    if wire == 0:
        return key + _varint(int(payload))
    if wire == 5:
        return key + struct.pack("<I", int(payload))
    return key + _varint(len(payload)) + payload


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    body, restarts = bytearray(), []
    for key, value in entries:  # a restart point at every entry: no prefix sharing
        restarts.append(len(body))
        body += _varint(0) + _varint(len(key)) + _varint(len(value)) + key + value
    if not restarts:
        restarts = [0]
    for r in restarts:
        body += struct.pack("<I", r)
    body += struct.pack("<I", len(restarts))
    return bytes(body)


def write_tf_checkpoint(prefix: str | Path, tensors: dict[str, np.ndarray]) -> None:
    """Write ``prefix.index`` and ``prefix.data-00000-of-00001`` in TensorFlow's bundle format."""
    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    data = bytearray()
    entries = [(b"", _field(1, 0, 1) + _field(3, 2, _field(1, 0, 1)))]  # header: 1 shard, version 1
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        arr = arr.astype(arr.dtype.newbyteorder("<"))
        shape = b"".join(_field(2, 2, _field(1, 0, d)) for d in arr.shape)
        proto = _field(1, 0, DTYPE_CODES[arr.dtype]) + _field(2, 2, shape)
        proto += _field(4, 0, len(data)) + _field(5, 0, arr.nbytes) + _field(6, 5, 0)
        entries.append((name.encode(), proto))
        data += arr.tobytes()
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(data))

    table = bytearray()
    data_block = _block(entries)
    data_handle = _varint(0) + _varint(len(data_block))
    table += data_block + b"\0" * 5
    meta_block = _block([])
    meta_handle = _varint(len(table)) + _varint(len(meta_block))
    table += meta_block + b"\0" * 5
    index_block = _block([(entries[-1][0], data_handle)])
    index_handle = _varint(len(table)) + _varint(len(index_block))
    table += index_block + b"\0" * 5
    footer = meta_handle + index_handle
    table += footer + b"\0" * (40 - len(footer)) + struct.pack("<Q", TABLE_MAGIC)
    Path(prefix + ".index").write_bytes(bytes(table))


def random_decoder_checkpoints(vae_dir: str | Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """``vae_dir/{id,exp,gamma,rot}/stage1_epoch_395.ckpt.*`` with the real names and shapes (plus Adam slots)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in dec.DECODERS:
        local = {k: (rng.standard_normal(s) * 0.1).astype(np.float32) for k, s in dec.variable_specs(name).items()}
        tensors = {dec.checkpoint_name(name, k): v for k, v in local.items()}
        tensors.update({dec.checkpoint_name(name, k) + "/Adam": np.zeros_like(v) for k, v in local.items()})
        tensors[dec.checkpoint_name(name, "loggamma_x")] = np.zeros((), np.float32)
        tensors["beta1_power"] = np.full((), 0.9, np.float32)
        write_tf_checkpoint(Path(vae_dir) / name / "stage1_epoch_395.ckpt", tensors)
        out[name] = local
    return out


class _Net:
    def __init__(self, name: str, variables: dict[str, np.ndarray], components: dict | None = None, **static_kwargs):
        self.state = {
            "version": 3,
            "name": name,
            "static_kwargs": static_kwargs,
            "components": components or {},
            "build_module_src": "# network build code is not needed to read the weights\n",
            "build_func_name": name,
            "variables": list(variables.items()),
        }

    def __getstate__(self) -> dict:
        return self.state

    def __setstate__(self, state: dict) -> None:
        self.state = state


class _EasyDict(dict):
    pass


@contextlib.contextmanager
def _dnnlib_modules():
    """Make ``dnnlib.tflib.network.Network`` and ``dnnlib.util.EasyDict`` name the stand-ins while pickling."""
    names = ["dnnlib", "dnnlib.tflib", "dnnlib.tflib.network", "dnnlib.util"]
    saved = {n: sys.modules.get(n) for n in names}
    mods = {n: types.ModuleType(n) for n in names}
    mods["dnnlib.tflib.network"].Network = _Net
    mods["dnnlib.util"].EasyDict = _EasyDict
    old = (_Net.__module__, _Net.__qualname__, _EasyDict.__module__, _EasyDict.__qualname__)
    _Net.__module__, _Net.__qualname__ = "dnnlib.tflib.network", "Network"
    _EasyDict.__module__, _EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    sys.modules.update(mods)
    try:
        yield
    finally:
        _Net.__module__, _Net.__qualname__, _EasyDict.__module__, _EasyDict.__qualname__ = old
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def random_generator_variables(cfg: GeneratorConfig | None = None, seed: int = 0) -> tuple[dict, dict]:
    """(mapping, synthesis) variables of the released shapes, scaled like trained ones.

    Mapping weights have std 100 (initialised at 1 / lrmul); the rest N(0, 1) except biases and
    style weights, kept small so activations stay in a sane range through 14 layers.
    """
    cfg = cfg or GeneratorConfig()
    rng = np.random.default_rng(seed)
    mapping = {}
    for k, s in mapping_specs(cfg).items():
        mapping[k] = (rng.standard_normal(s) * (100.0 if k.endswith("weight") else 1.0)).astype(np.float32)
    synthesis = {}
    for k, s in synthesis_specs(cfg, with_unused=True).items():
        scale = 0.1 if (k.endswith("bias") or "StyleMod" in k or "Noise" in k) else 1.0
        synthesis[k] = (rng.standard_normal(s) * scale).astype(np.float32)
    synthesis["lod"] = np.zeros((), np.float32)
    return mapping, synthesis


def write_network_pickle(
    path: str | Path,
    mapping: dict[str, np.ndarray],
    synthesis: dict[str, np.ndarray],
    resolution: int = 256,
) -> None:
    """A ``(G, D, Gs)`` pickle laid out like ``network-snapshot-020126.pkl``."""
    kwargs = _EasyDict(num_channels=3, resolution=resolution, label_size=0)

    def gen(name: str) -> _Net:
        comps = {
            "synthesis": _Net("G_synthesis", synthesis, **kwargs),
            "mapping": _Net("G_mapping", mapping, dlatent_broadcast=14, **kwargs),
        }
        top = {"lod": np.zeros((), np.float32), "dlatent_avg": np.zeros(512, np.float32)}
        return _Net(name, top, comps, **kwargs)

    disc = _Net("D", {"lod": np.zeros((), np.float32), "4x4/Dense0/weight": np.zeros((8, 8), np.float32)}, **kwargs)
    with _dnnlib_modules():
        blob = pickle.dumps((gen("G"), disc, gen("Gs")), protocol=4)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(blob)


def write_random_converted(path: str | Path, cfg: GeneratorConfig | None = None, seed: int = 0, average_samples: int = 16) -> Path:
    """A converted file of random weights for any generator size (small ones make fast tests)."""
    from synthface.generator.discofacegan import convert
    from synthface.generator.discofacegan.networks import Generator

    import torch

    cfg = cfg or GeneratorConfig()
    mapping, synthesis = random_generator_variables(cfg, seed)
    synthesis = {k: v for k, v in synthesis.items() if k in synthesis_specs(cfg)}
    rng = np.random.default_rng(seed + 1)
    decoder_vars = {
        name: {k: (rng.standard_normal(s) * 0.1).astype(np.float32) for k, s in dec.variable_specs(name).items()}
        for name in dec.DECODERS
    }
    gen = Generator(cfg, {k: torch.from_numpy(v) for k, v in mapping.items()}, {k: torch.from_numpy(v) for k, v in synthesis.items()})
    avg = convert.average_w_id(gen, dec.CoeffDecoder.from_tensors(decoder_vars["id"]), average_samples)
    return convert.save(path, cfg, mapping, synthesis, decoder_vars, avg, {"samples": average_samples, "seed": 1}, "random")
