"""The training loop: shards (and real faces) in, a margin-softmax-trained backbone out.

One process per device; under ``torchrun`` (WORLD_SIZE > 1) it joins the process group and wraps
the model in DistributedDataParallel, otherwise it runs as a plain single process (CPU included).
Rank 0 alone writes the CSV log, TensorBoard events, checkpoints, validation results and exports.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from synthface.errors import SynthError

from . import backbones, data, export, imaging
from .config import TrainConfig
from .losses import MarginSoftmax
from .mixup import DomainMixer, psi_schedule

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.csv"
LOG_FIELDS = ("epoch", "step", "loss", "lr", "images_per_s", "psi", "val_accuracy", "val_accuracy_std", "seconds")


class FaceModel(nn.Module):
    """Backbone and margin head in one module, so DDP sees a single forward that returns the loss."""

    def __init__(self, backbone: nn.Module, head: MarginSoftmax):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x, idx, weight, amp: bool = False):
        with torch.autocast(x.device.type, enabled=amp):
            emb = self.backbone(x)
        return self.head(emb.float(), idx, weight)


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    import torch.distributed as dist

    if not dist.is_available():
        raise SynthError("WORLD_SIZE > 1 but this PyTorch has no distributed support; run a single process")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def lr_factor(step: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then step decay (x0.1 at each of lr_steps epochs) or cosine to zero."""
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "cosine":
        total = max(1, cfg.epochs * steps_per_epoch - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / total)))
    epoch = step / steps_per_epoch
    return 0.1 ** sum(epoch >= e for e in cfg.lr_steps)


class _Logger:
    def __init__(self, out: str, enabled: bool, resume: bool):
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        path = os.path.join(out, LOG_NAME)
        fresh = not (resume and os.path.isfile(path))
        self.file = open(path, "w" if fresh else "a", newline="", encoding="utf-8")  # noqa: SIM115 - open for the run
        self.csv = csv.DictWriter(self.file, LOG_FIELDS, extrasaction="ignore")
        if fresh:
            self.csv.writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(os.path.join(out, "tb"))
        except ImportError:  # tensorboard is optional: the CSV log has the same numbers
            self.tb = None
            print("note: TensorBoard logging is off (pip install 'synthface[train]' to enable it); "
                  f"metrics still go to {path}", file=sys.stderr)

    def log(self, row: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        self.csv.writerow(row)
        self.file.flush()
        if self.tb is not None:
            for key, value in row.items():
                if key not in ("epoch", "step") and isinstance(value, (int, float)) and not math.isnan(value):
                    self.tb.add_scalar(f"train/{key}" if not key.startswith("val") else f"val/{key[4:]}", value, step)

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.tb is not None:
                self.tb.close()


def _checkpoint_meta(cfg: TrainConfig, num_classes: int) -> dict[str, Any]:
    return {"network": cfg.network, "image_size": list(cfg.image_size), "embedding_size": cfg.embedding_size,
            "num_classes": num_classes, "loss": cfg.loss}


def _load_checkpoint(path: str, cfg: TrainConfig, num_classes: int) -> dict[str, Any]:
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_NAME)
    if not os.path.isfile(path):
        raise SynthError(f"no checkpoint to resume at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise SynthError(f"{path} is not a training checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or "backbone" not in ckpt:
        raise SynthError(f"{path} is not a training checkpoint of this trainer")
    want = _checkpoint_meta(cfg, num_classes)
    for key in ("network", "image_size", "embedding_size", "num_classes", "loss"):
        if ckpt.get(key) != want[key]:
            raise SynthError(f"checkpoint {path} has {key} {ckpt.get(key)!r} but this run has {want[key]!r}; "
                             "resume with the same network and data, or start a fresh --out")
    return ckpt


def train(cfg: TrainConfig, resume: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train; returns per-epoch mean losses, validation results and the exported files."""
    rank, world, local_rank = _distributed()
    if cfg.device:
        device = torch.device(cfg.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    amp = bool(cfg.amp and device.type == "cuda")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)

    syn = data.resolve_shards(cfg.data, cfg.num_classes) if cfg.mode != "real" else None
    real = data.resolve_real(cfg.real) if cfg.real and cfg.mode != "syn" else None
    num_syn = syn.num_classes if syn else 0
    num_classes = num_syn + (real.num_classes if real else 0)
    epoch_samples = cfg.epoch_samples or (syn.num_samples if syn else real.num_samples)
    steps_per_epoch = max(1, epoch_samples // (cfg.batch_size * world))
    if cfg.max_steps:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps)
    schedule = psi_schedule(cfg.psi) if (syn and real) else None

    backbone = backbones.build(cfg.network, cfg.image_size, cfg.embedding_size)
    head = MarginSoftmax(cfg.embedding_size, num_classes, cfg.loss, cfg.scale, cfg.margin)
    # NHWC throughout (loaders hand over NHWC uint8; to_tensor_batch keeps that layout): oneDNN's and
    # cuDNN's fast convolution paths want it; MobileFaceNet trains ~1.2-1.7x faster on CPU this way.
    model = FaceModel(backbone, head).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps_per_epoch, cfg))
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    os.makedirs(cfg.out, exist_ok=True)
    start_epoch = 0
    if resume:
        ckpt = _load_checkpoint(resume, cfg, num_classes)
        export.load_state(backbone, ckpt["backbone"], resume)
        head.load_state_dict(ckpt["head"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch = int(ckpt["epoch"])
    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
    mixer = DomainMixer(schedule, cfg.seed + 1000 * start_epoch + rank) if schedule else None

    valset = None
    if cfg.val and rank == 0:
        from .evaluate import load_pairs

        valset = load_pairs(cfg.val)
    stream = data.TrainStream(
        syn, real, batch_size=cfg.batch_size, image_size=cfg.image_size, seed=cfg.seed,
        shuffle_buffer=cfg.shuffle_buffer, resampled=cfg.resampled, flip=cfg.flip, crop=cfg.crop,
        real_offset=num_syn, start_pass=start_epoch, real_cache_mb=cfg.real_cache_mb,
        augment=cfg.augment, augment_real=cfg.augment_real,
    )
    loader = iter(data.make_loader(stream, cfg.workers, pin_memory=device.type == "cuda"))
    logger = _Logger(cfg.out, rank == 0, resume is not None)
    meta = _checkpoint_meta(cfg, num_classes)
    summary: dict[str, Any] = {"rank": rank, "epoch_loss": [], "val": [], "steps_per_epoch": steps_per_epoch,
                               "num_classes": num_classes, "synthetic_classes": num_syn}
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        bar = range(steps_per_epoch)
        if tqdm is not None and progress and rank == 0:
            bar = tqdm(bar, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", dynamic_ncols=True, leave=False)
        losses, t_epoch, t_log, seen = [], time.perf_counter(), time.perf_counter(), 0
        for _ in bar:
            batch = next(loader)
            if "error" in batch:
                raise SynthError(batch["error"])
            psi = 1.0
            if syn is not None:
                x = imaging.to_tensor_batch(batch["syn"], device)
                idx, w = batch["syn_idx"].to(device), batch["syn_w"].to(device)
                if mixer is not None:
                    psi = mixer.draw()
                    xr = imaging.to_tensor_batch(batch["real"], device)
                    x = DomainMixer.mix(x, xr, psi)
                    idx, w = DomainMixer.targets(idx, w, batch["real_idx"].to(device), psi)
            else:
                x = imaging.to_tensor_batch(batch["real"], device)
                idx = batch["real_idx"].to(device).view(-1, 1)
                w = torch.ones_like(idx, dtype=torch.float32)
            loss = net(x, idx, w, amp)
            if not torch.isfinite(loss):
                raise SynthError(f"the loss became {loss.item()} at epoch {epoch + 1}; lower --lr or turn AMP off")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            seen += x.shape[0]
            losses.append(loss.item())
            if step % cfg.log_every == 0 or len(losses) == steps_per_epoch:
                now = time.perf_counter()
                rate = seen * world / max(now - t_log, 1e-9)
                row = {"epoch": epoch + 1, "step": step, "loss": round(float(np.mean(losses[-cfg.log_every:])), 5),
                       "lr": optimizer.param_groups[0]["lr"], "images_per_s": round(rate, 1), "psi": psi}
                logger.log(row, step)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.4f}", img_s=f"{rate:.0f}")
                t_log, seen = now, 0
        epoch_loss = float(np.mean(losses))
        summary["epoch_loss"].append(epoch_loss)
        if rank == 0:
            row = {"epoch": epoch + 1, "step": step, "loss": round(epoch_loss, 5), "lr": optimizer.param_groups[0]["lr"],
                   "seconds": round(time.perf_counter() - t_epoch, 2)}
            if valset is not None:
                from .evaluate import verify

                res = verify(model.backbone, valset, cfg.image_size, batch_size=cfg.val_batch_size, device=device)
                summary["val"].append(res)
                row.update(val_accuracy=res["accuracy"], val_accuracy_std=res["accuracy_std"])
            logger.log(row, step)
            ckpt = {**meta, "epoch": epoch + 1, "config": cfg.to_dict(), "backbone": model.backbone.state_dict(),
                    "head": model.head.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict()}
            tmp = os.path.join(cfg.out, CHECKPOINT_NAME + ".tmp")
            torch.save(ckpt, tmp)
            os.replace(tmp, os.path.join(cfg.out, CHECKPOINT_NAME))
            msg = f"epoch {epoch + 1}/{cfg.epochs}: loss {epoch_loss:.4f}"
            if summary["val"] and valset is not None:
                msg += f", val accuracy {100 * summary['val'][-1]['accuracy']:.2f}%"
            if progress:
                print(msg, flush=True)
    logger.close()
    if rank == 0 and cfg.export:
        summary["exported"] = export.export(model.backbone, cfg.out, {k: meta[k] for k in
                                                                        ("network", "image_size", "embedding_size")})
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return summary
