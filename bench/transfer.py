"""Synthetic-to-real transfer: build, train, and verify on real faces, end to end on the CPU.

    python bench/transfer.py                                  # the CPU protocol on the defaults
    python bench/transfer.py --ids 2000 --per-id 10 --yaw-range -60 60     # any build flag passes through
    python bench/transfer.py --real ../shared/realfaces/celeba-dev/train --modes syn,real,dm
    python bench/transfer.py --train-arg=--no-augment --name no_aug       # a training flag

The protocol (what every A/B in docs/quality.md used unless it says otherwise):

1. ``synth build`` with the given flags (default ``--ids 1000 --per-id 20``: a 20,000-image budget);
2. ``synth pairs --like`` the build: 600 held-out identities x 10 images, 6,000 synthetic pairs;
3. ``synth train --config mbf_cpu`` (MobileFaceNet, batch 64, cosine lr) for ``--epochs`` (4), once
   per mode: ``syn`` (synthetic only), ``real`` (the real set alone, same number of steps) and ``dm``
   (domain mixup with ``--real``);
4. ``synth eval`` of each model on the real pairs (``--real-pairs``, default the celeba-dev
   ``eval/pairs.txt``: 6,000 pairs of real in-the-wild photos, 10 identity-disjoint folds) and on the
   held-out synthetic pairs.

Prints real-pair accuracy +- std over the 10 folds, TAR@FAR=1e-3, ROC AUC, the synthetic-pair
accuracy and the wall time of each stage, as a Markdown table, and appends one JSON line per model
to ``WORK/results.jsonl``. A finished stage is not run again when its output exists (delete the
folder, or give another ``--name``, to start over); the build itself resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REAL = ROOT.parent / "shared" / "realfaces" / "celeba-dev"
MODES = ("syn", "real", "dm")


def _synth(args: list[str], log: Path) -> float:
    """Run one ``synth`` command, its output teed to ``log``; returns the wall time in seconds."""
    cmd = [sys.executable, "-m", "synthface.cli", *args]
    print("$ synth " + " ".join(shlex.quote(a) for a in args), flush=True)
    t0 = time.perf_counter()
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ synth " + " ".join(shlex.quote(a) for a in args) + "\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        sys.exit(f"synth {args[0]} failed (exit {proc.returncode}); the end of {log}:\n" + "\n".join(tail))
    return time.perf_counter() - t0


def _evaluate(model: Path, pairs: str, out: Path, log: Path) -> tuple[dict, float]:
    if not out.is_file():
        seconds = _synth(["eval", str(model), "--pairs", pairs, "--json", str(out)], log)
    else:
        seconds = 0.0
    return json.loads(out.read_text(encoding="utf-8"))[0], seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="default", help="Name of this arm; its files go to WORK/NAME.")
    ap.add_argument("--work", default="runs/transfer", help="Folder for builds, models and results.")
    ap.add_argument("--ids", type=int, default=1000)
    ap.add_argument("--per-id", type=int, default=20)
    ap.add_argument("--modes", default=None,
                    help="Comma-separated training modes among syn, real, dm (default: syn, and dm with --real).")
    ap.add_argument("--real", default=None, help="Real faces for dm/real modes (identity-per-folder), e.g. "
                                                 f"{DEFAULT_REAL / 'train'}.")
    ap.add_argument("--real-pairs", default=str(DEFAULT_REAL / "eval" / "pairs.txt"),
                    help="Real verification pairs (LFW pairs.txt), default the celeba-dev eval set.")
    ap.add_argument("--config", default="mbf_cpu", help="Training config.")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0, help="Seed of the build and of training.")
    ap.add_argument("--pairs-ids", type=int, default=600, help="Held-out synthetic identities (10 images each).")
    ap.add_argument("--train-arg", action="append", default=[],
                    help="Extra flag for 'synth train' (repeatable; write --train-arg=--flag for flags).")
    args, build_flags = ap.parse_known_args()

    modes = [m for m in (args.modes or ("syn,dm" if args.real else "syn")).split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad:
        sys.exit(f"unknown mode {bad[0]!r}: use syn, real and/or dm")
    if {"real", "dm"} & set(modes) and not args.real:
        sys.exit("modes real and dm need --real DIR (e.g. ../shared/realfaces/celeba-dev/train)")
    if not os.path.isfile(args.real_pairs):
        sys.exit(f"no real pairs at {args.real_pairs}: pass --real-pairs PATH/pairs.txt (LFW format)")

    work = Path(args.work) / args.name
    work.mkdir(parents=True, exist_ok=True)
    log = work / "transfer.log"
    data, syn_pairs = work / "data", work / "synth_pairs"
    times: dict[str, float] = {}

    build = ["build", "--ids", str(args.ids), "--per-id", str(args.per_id), "--seed", str(args.seed),
             "--out", str(data), *build_flags]
    times["build"] = _synth(build, log)
    if not (syn_pairs / "pairs.txt").is_file():
        times["pairs"] = _synth(["pairs", "--out", str(syn_pairs), "--ids", str(args.pairs_ids),
                                 "--images-per-id", "10", "--like", str(data)], log)

    rows = []
    for mode in modes:
        run = work / f"train_{mode}"
        model = run / "backbone.ts"
        train_s = 0.0
        if not model.is_file():
            cmd = ["train", "--config", args.config, "--epochs", str(args.epochs), "--seed", str(args.seed),
                   "--out", str(run)]
            if mode != "real":
                cmd += ["--data", str(data)]
            if mode in ("real", "dm"):
                cmd += ["--real", args.real]
            if mode == "syn" and args.real:
                cmd += ["--no-dm"]
            if mode == "real":
                # The same number of steps as the synthetic runs: an epoch is the synthetic set's size.
                cmd += ["--real-only", "--epoch-samples", str(args.ids * args.per_id)]
            train_s = _synth(cmd + args.train_arg, log)
        real_res, real_s = _evaluate(model, args.real_pairs, run / "eval_real.json", log)
        syn_res, syn_s = _evaluate(model, str(syn_pairs), run / "eval_synth.json", log)
        row = {
            "name": args.name, "mode": mode, "build_flags": build_flags, "train_args": args.train_arg,
            "ids": args.ids, "per_id": args.per_id, "epochs": args.epochs, "config": args.config,
            "real_accuracy": real_res["accuracy"], "real_accuracy_std": real_res["accuracy_std"],
            "real_tar@far=1e-3": real_res["tar@far=0.001"], "real_auc": real_res["auc"],
            "synth_accuracy": syn_res["accuracy"], "synth_accuracy_std": syn_res["accuracy_std"],
            "seconds": {**times, "train": round(train_s, 1), "eval": round(real_s + syn_s, 1)},
        }
        rows.append(row)
        if train_s:
            with open(work / "results.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    print()
    print("| arm | mode | real pairs acc | TAR@FAR=1e-3 | AUC | synth pairs acc | build s | train s | eval s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["seconds"]
        print(f"| {r['name']} | {r['mode']} | {100 * r['real_accuracy']:.2f} ± {100 * r['real_accuracy_std']:.2f} "
              f"| {100 * r['real_tar@far=1e-3']:.2f} | {r['real_auc']:.4f} "
              f"| {100 * r['synth_accuracy']:.2f} ± {100 * r['synth_accuracy_std']:.2f} "
              f"| {s.get('build', 0):.0f} | {s['train']:.0f} | {s['eval']:.0f} |")


if __name__ == "__main__":
    main()
