"""Unpickling the official TensorFlow network pickle without TensorFlow or its ``dnnlib``.

The pickle holds ``(G, D, Gs)``, each a ``dnnlib.tflib.network.Network`` whose state is a dict
(version, name, static_kwargs, components, build_module_src, build_func_name, variables). On
unpickling, the real class rebuilds a TensorFlow graph; the stand-in here only keeps the state.
The unpickler resolves nothing but those stand-ins, ``EasyDict``, numpy arrays and plain
containers: a pickle can run arbitrary code, and a weights file has no reason to need more.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from synthface.errors import SynthError


class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network``: its pickled state, and nothing more."""

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict) or "variables" not in state:
            raise pickle.UnpicklingError("network state without variables")
        self.name = state.get("name")
        self.version = state.get("version")
        self.static_kwargs = dict(state.get("static_kwargs") or {})
        self.components = dict(state.get("components") or {})
        self.build_func_name = state.get("build_func_name")
        self.variables = {str(k): np.asarray(v) for k, v in state["variables"]}

    def __getstate__(self) -> dict:
        return {
            "version": self.version,
            "name": self.name,
            "static_kwargs": self.static_kwargs,
            "components": self.components,
            "build_module_src": "",
            "build_func_name": self.build_func_name,
            "variables": list(self.variables.items()),
        }


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_STAND_INS = {
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("dnnlib.util", "EasyDict"): EasyDict,
}
_NUMPY = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "bytearray", "complex", "slice"}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _STAND_INS:
            return _STAND_INS[(module, name)]
        if (module, name) in _NUMPY:
            if module.endswith("multiarray"):
                # Snapshots written with numpy 1.x name numpy.core; numpy 2 moved it to numpy._core.
                core = getattr(np, "_core", None) or np.core
                return getattr(core.multiarray, name)
            return getattr(np, name)
        if module == "_codecs" and name == "encode":  # how protocol-2 pickles spell bytes
            return codecs.encode
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return getattr(builtins, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a network snapshot")


def load_network_pickle(path: str | Path) -> tuple[TFNetwork, ...]:
    """The networks in an official snapshot, in pickled order (``(G, D, Gs)``)."""
    path = Path(path)
    if not path.is_file():
        raise SynthError(f"network pickle {path} not found: pass the path of network-snapshot-020126.pkl")
    try:
        with open(path, "rb") as f:
            data = _Unpickler(f).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as exc:
        raise SynthError(f"cannot read network pickle {path}: {exc}") from None
    nets = data if isinstance(data, tuple) else (data,)
    if not nets or not all(isinstance(n, TFNetwork) for n in nets):
        raise SynthError(f"{path} is not a TensorFlow StyleGAN snapshot: expected a tuple of networks (G, D, Gs)")
    return nets


def generator_of(nets: tuple[TFNetwork, ...], path: str | Path = "pickle") -> TFNetwork:
    """Gs (the long-term average generator): the third network of a (G, D, Gs) snapshot, else the only one."""
    if len(nets) == 3:
        return nets[2]
    if len(nets) == 1:
        return nets[0]
    raise SynthError(f"{path} holds {len(nets)} networks; expected (G, D, Gs)")


def component(net: TFNetwork, name: str, path: str | Path = "pickle") -> TFNetwork:
    comp = net.components.get(name)
    if not isinstance(comp, TFNetwork):
        raise SynthError(f"{path}: generator {net.name!r} has no {name!r} sub-network; is this a StyleGAN generator?")
    return comp
