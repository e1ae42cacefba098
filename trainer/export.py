"""Trained backbones in forms other tools load without this package's training code.

``backbone.pth`` is a plain state dict, with ``backbone.json`` beside it saying which network,
input size and embedding size it belongs to; ``backbone.ts`` is TorchScript (``torch.jit.load``
needs nothing else); ``backbone.onnx`` is written when the optional ``onnx`` package is installed
(``pip install -e '.[export]'``). All take float NCHW RGB in [-1, 1] ((x - 127.5) / 127.5) and
return un-normalised embeddings.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import warnings
from typing import Any

import torch

from synthface.errors import SynthError

from . import backbones

META_NAME = "backbone.json"


def export(backbone: torch.nn.Module, out_dir: str, meta: dict[str, Any]) -> dict[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    # Plain NCHW weights: training keeps them channels-last, which other tools need not know about.
    model = copy.deepcopy(backbone).cpu().float().to(memory_format=torch.contiguous_format).eval()
    h, w = meta["image_size"]
    written = {}
    path = os.path.join(out_dir, "backbone.pth")
    torch.save(model.state_dict(), path)
    written["state_dict"] = path
    with open(os.path.join(out_dir, META_NAME), "w", encoding="utf-8") as f:
        json.dump({**meta, "input": "RGB float NCHW, (x - 127.5) / 127.5"}, f, indent=2, sort_keys=True)
    example = torch.zeros(2, 3, h, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(model, example)
        path = os.path.join(out_dir, "backbone.ts")
        scripted.save(path)
        written["torchscript"] = path
        if importlib.util.find_spec("onnx") is not None:
            path = os.path.join(out_dir, "backbone.onnx")
            torch.onnx.export(model, example, path, input_names=["input"], output_names=["embedding"],
                              dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False)
            written["onnx"] = path
    return written


def _describe(meta: dict[str, Any]) -> str:
    h, w = meta.get("image_size", ("?", "?"))
    return f"network {meta.get('network')!r} at {h}x{w}"


def load_backbone(path: str, network: str | None = None, image_size=None, device="cpu"):
    """(model, image_size) from a training checkpoint, a backbone.pth (+ backbone.json) or a TorchScript file."""
    if not os.path.isfile(path):
        if os.path.isdir(path):
            for name in ("backbone.ts", "backbone.pth", "checkpoint.pt"):
                if os.path.isfile(os.path.join(path, name)):
                    return load_backbone(os.path.join(path, name), network, image_size, device)
        raise SynthError(f"model {path} does not exist: give a checkpoint.pt, backbone.pth or backbone.ts")
    if path.endswith(".onnx"):
        raise SynthError(f"{path} is an ONNX export, for other runtimes: give the backbone.ts, backbone.pth or "
                         "checkpoint.pt beside it")
    if path.endswith(".ts"):
        try:
            model = torch.jit.load(path, map_location=device)
        except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, ValueError ... for a bad file
            raise SynthError(f"{path} is not a TorchScript model ({type(exc).__name__}): give the backbone.ts "
                             "that synth train exported, or its backbone.pth / checkpoint.pt") from None
        meta = _sidecar(path)
        size = tuple(image_size or meta.get("image_size") or (112, 112))
        return model.eval(), size
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a non-checkpoint file
        raise SynthError(f"{path} is not a PyTorch checkpoint ({type(exc).__name__})") from None
    if isinstance(state, dict) and "backbone" in state and "network" in state:
        meta = {k: state[k] for k in ("network", "image_size", "embedding_size")}
        state = state["backbone"]
    else:
        meta = _sidecar(path)
    meta = {**meta, **({"network": network} if network else {})}
    if image_size:
        meta["image_size"] = list(image_size)
    if not meta.get("network"):
        raise SynthError(f"{path} does not say which network it is for: pass --network (r18, r50 or mbf)")
    size = tuple(meta.get("image_size") or (112, 112))
    model = backbones.build(meta["network"], size, int(meta.get("embedding_size", 512)))
    load_state(model, state, f"{path} ({_describe(meta)})")
    return model.to(device).eval(), size


def load_state(model: torch.nn.Module, state: dict, what: str) -> None:
    """``load_state_dict`` with a one-line error when the weights belong to another architecture."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SynthError(f"weights in {what} do not fit this network ({first}); "
                         "pass the --network and --image-size it was trained with") from None


def _sidecar(path: str) -> dict[str, Any]:
    meta_path = os.path.join(os.path.dirname(path), META_NAME)
    if os.path.isfile(meta_path):
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError) as exc:
            raise SynthError(f"{meta_path} is not readable JSON ({type(exc).__name__}): delete it and pass "
                             "--network and --image-size instead") from None
        if not isinstance(meta, dict):
            raise SynthError(f"{meta_path} is not a JSON object: delete it and pass --network and --image-size")
        return meta
    return {}
