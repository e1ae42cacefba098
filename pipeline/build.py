"""The driver of ``synth build``: check the output, resume what is done, run the rest, record it.

Order of work, and why:

1. Validate everything (config, generator, output location) before starting Ray, so bad input
   fails in a fraction of a second and leaves existing data untouched.
2. Compare with an existing manifest: the same config resumes, a different one is refused unless
   ``--overwrite`` (which deletes only files this build format names).
3. Keep the shards the manifest lists whose bytes still hash to the recorded sha256, and adopt
   shards that finished after the last manifest update (their stats file names the sha256);
   everything else is rendered again under the same deterministic name, so nothing is duplicated.
4. Render on the workers, rewriting the manifest at most once per ``manifest_interval`` seconds.
5. Write ``index.parquet`` (rows for skipped shards are recomputed from the sampler, without
   rendering) and the final manifest, and print a summary.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from synthface.errors import BuildFailed, SynthError
from synthface.generator import registry

from . import index, manifest, schema
from .config import BuildConfig
from .distributor import LocalPool, RayPool, check_reachable
from .storage import TMP_MARK, Storage, ours


@dataclass
class RunOptions:
    """How to run a build; none of this changes the output bytes."""

    out: str
    workers: int | None = None  # None: one per CPU (or GPU slot) of the cluster; 0: in the driver
    gpus_per_worker: float = 0.0
    address: str | None = None
    overwrite: bool = False
    storage_options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64
    max_attempts: int = 3
    progress: bool = True
    manifest_interval: float = 1.0


def generator_info(cfg: BuildConfig) -> dict[str, Any]:
    """Resolve and check the generator without instantiating it (that happens once per worker)."""
    cls = registry.get(cfg.generator)
    unknown = sorted(set(cfg.generator_options) - set(cls.options))
    if unknown:
        raise SynthError(
            f"generator {cfg.generator!r} has no option {unknown[0]!r}; its options are: {', '.join(sorted(cls.options)) or 'none'}"
        )
    return {"name": cls.name, "version": cls.version}


def check_options(opts: RunOptions, storage: Storage) -> None:
    if opts.workers is not None and opts.workers < 0:
        raise SynthError(f"--workers must be 0 (run in this process) or more, got {opts.workers}")
    if opts.gpus_per_worker < 0:
        raise SynthError(f"--gpus-per-worker must be 0 or more, got {opts.gpus_per_worker}")
    if opts.max_attempts < 1:
        raise SynthError(f"--max-attempts must be at least 1, got {opts.max_attempts}")
    if opts.batch_size < 1:
        raise SynthError(f"--batch-size must be at least 1, got {opts.batch_size}")
    if storage.protocol == "memory" and opts.workers != 0:
        raise SynthError("memory:// exists only inside one process, so Ray workers cannot write to it: "
                         "use a directory or an object store URL, or --workers 0")
    if opts.address and opts.workers != 0:
        check_reachable(opts.address)


def _clear(storage: Storage, prefixes: set[str]) -> None:
    patterns = [ours(p) for p in prefixes]
    for name in storage.names():
        base = name.split(TMP_MARK, 1)[0]
        if any(p.match(name) for p in patterns) or base in (schema.MANIFEST_NAME, schema.INDEX_NAME):
            storage.remove(name)


def _remove_leftovers(storage: Storage, prefix: str) -> None:
    """Temporary files of an interrupted run (local outputs only; object stores have none)."""
    pattern = ours(prefix)
    for name in storage.names():
        if TMP_MARK in name and (pattern.match(name) or name.split(TMP_MARK, 1)[0] in (schema.MANIFEST_NAME, schema.INDEX_NAME)):
            storage.remove(name)


def _existing(storage: Storage, cfg: BuildConfig, gen: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The manifest to resume from, after refusing or clearing an output that does not match."""
    old = manifest.read(storage) if not overwrite else None
    if overwrite:
        try:
            previous = manifest.read(storage)
        except SynthError:
            previous = None
        prefixes = {cfg.prefix}
        if previous and isinstance(previous.get("config"), dict) and isinstance(previous["config"].get("prefix"), str):
            prefixes.add(previous["config"]["prefix"])
        _clear(storage, prefixes)
        return None
    if old is None:
        pattern = ours(cfg.prefix)
        found = [n for n in storage.names() if TMP_MARK not in n and (pattern.match(n) or n == schema.INDEX_NAME)]
        if found:
            raise SynthError(f"{storage.url} already holds {found[0]} but no {schema.MANIFEST_NAME}: "
                             "pass --overwrite to replace it, or choose another --out")
        return None
    previous = {"schema": old.get("schema"), "config": old.get("config"),
                "generator": {k: (old.get("generator") or {}).get(k) for k in ("name", "version")}}
    diff = manifest.differences(previous, manifest.identity(cfg, gen))
    if diff:
        more = f" (and {len(diff) - 1} more)" if len(diff) > 1 else ""
        raise SynthError(f"{storage.url} holds a different build ({diff[0]}{more}): re-run with the same settings to resume, "
                         "pass --overwrite to replace it, or choose another --out")
    return old


def _completed(storage: Storage, cfg: BuildConfig, old: dict[str, Any] | None) -> dict[int, dict[str, Any]]:
    """Shards already on disk with the right bytes: listed in the manifest, or finished after its last update."""
    names = set(storage.names())
    claims: dict[int, dict[str, Any]] = {}
    for entry in (old or {}).get("shards", []):
        claims[int(entry["index"])] = entry
    for shard in range(cfg.num_shards):
        stats_file = schema.stats_name(cfg.prefix, shard)
        if shard in claims or stats_file not in names or schema.shard_name(cfg.prefix, shard) not in names:
            continue
        try:
            stats = orjson.loads(storage.read(stats_file))
            claims[shard] = {"index": shard, "name": stats["name"], "count": stats["count"],
                             "sha256": stats["sha256"], "bytes": stats["bytes"]}
        except (ValueError, KeyError, TypeError, FileNotFoundError):
            continue

    def check(item):
        shard, entry = item
        name = schema.shard_name(cfg.prefix, shard)
        if not (0 <= shard < cfg.num_shards) or entry.get("name") != name or name not in names:
            return None
        got = storage.sha256(name)
        expected_count = min(cfg.shard_size, cfg.num_samples - shard * cfg.shard_size)
        if got is None or got[0] != entry["sha256"] or entry["count"] != expected_count:
            return None
        return shard, {"name": name, "count": entry["count"], "sha256": got[0], "bytes": got[1]}

    with ThreadPoolExecutor(8) as pool:
        return dict(r for r in pool.map(check, sorted(claims.items())) if r is not None)


def _summary_line(label: str, value: Any) -> str:
    return f"  {label:<11} {value}"


def run(cfg: BuildConfig, opts: RunOptions) -> dict[str, Any]:
    """Build (or resume) a dataset; returns the summary. Raises BuildFailed if shards still fail."""
    t_start = time.perf_counter()
    gen = generator_info(cfg)
    storage = Storage(opts.out, opts.storage_options)
    check_options(opts, storage)
    storage.prepare()
    old = _existing(storage, cfg, gen, opts.overwrite)
    _remove_leftovers(storage, cfg.prefix)
    done = _completed(storage, cfg, old)
    complete_before = bool(old and old.get("complete")) and len(done) == cfg.num_shards and storage.exists(schema.INDEX_NAME)
    if complete_before:
        manifest.write(storage, manifest.make(cfg, gen, done, complete=True))
        summary = {"images": cfg.num_samples, "shards": cfg.num_shards, "rendered_images": 0, "rendered_shards": 0,
                   "seconds": time.perf_counter() - t_start, "images_per_s": 0.0, "output": storage.url,
                   "timing": {}, "nodes": [], "workers": 0}
        _print_summary(summary, resumed=len(done), already_complete=True)
        return summary
    manifest.write(storage, manifest.make(cfg, gen, done, complete=False))

    todo = [("build", s) for s in range(cfg.num_shards) if s not in done]
    jobs = todo + [("index", s) for s in sorted(done)]
    rows: dict[int, dict[str, Any]] = {}
    stats: list[dict[str, Any]] = []
    cfg_dict = cfg.to_dict()

    bar = None
    if opts.progress:
        from tqdm import tqdm

        done_images = sum(e["count"] for e in done.values())
        bar = tqdm(total=cfg.num_samples, initial=done_images, unit="img", unit_scale=False, dynamic_ncols=True,
                   desc="build", file=sys.stderr, smoothing=0.1)
    state = {"dirty": False, "last": time.monotonic()}

    def on_done(job, result):
        kind, shard = job
        if kind == "build":
            st = result["stats"]
            done[shard] = {"name": st["name"], "count": st["count"], "sha256": st["sha256"], "bytes": st["bytes"]}
            stats.append(st)
            rows[shard] = result["index"]
            state["dirty"] = True
            if bar is not None:
                bar.update(st["count"])
        else:
            rows[shard] = result

    def tick():
        if state["dirty"] and time.monotonic() - state["last"] >= opts.manifest_interval:
            manifest.write(storage, manifest.make(cfg, gen, done, complete=False))
            state["dirty"], state["last"] = False, time.monotonic()

    t_render = time.perf_counter()
    if opts.workers == 0:
        pool = LocalPool(cfg_dict, storage, device="cuda" if opts.gpus_per_worker > 0 else "cpu",
                         batch_size=opts.batch_size)
    else:
        pool = RayPool(cfg_dict, storage, workers=opts.workers, gpus_per_worker=opts.gpus_per_worker,
                       address=opts.address, batch_size=opts.batch_size, max_jobs=max(len(jobs), 1))
    try:
        failures = pool.run(jobs, opts.max_attempts, on_done, tick) if jobs else []
    finally:
        if bar is not None:
            bar.close()
        manifest.write(storage, manifest.make(cfg, gen, done, complete=False))
        nodes = sorted(pool.nodes)
        workers = pool.size
        pool.close()
    elapsed_render = time.perf_counter() - t_render

    if failures:
        details = "; ".join(
            f"{schema.shard_name(cfg.prefix, f.job[1])}{'' if f.job[0] == 'build' else ' (index)'} ({f.error})"
            for f in sorted(failures, key=lambda f: f.job[1])[:10]
        )
        more = f"; and {len(failures) - 10} more" if len(failures) > 10 else ""
        raise BuildFailed(
            f"{len(failures)} of {cfg.num_shards} shards failed after {opts.max_attempts} attempts: {details}{more}; "
            f"the {len(done)} completed shards are kept in {storage.url}: re-run the same command to retry the rest"
        )

    storage.write(schema.INDEX_NAME, index.to_bytes(index.table([rows[s] for s in range(cfg.num_shards)])))
    manifest.write(storage, manifest.make(cfg, gen, done, complete=True))
    rendered = sum(s["count"] for s in stats)
    timing = {k: sum(s["timing"][k] for s in stats) for k in ("sample", "render", "encode", "write")}
    summary = {
        "images": cfg.num_samples, "shards": cfg.num_shards, "rendered_images": rendered, "rendered_shards": len(stats),
        "seconds": time.perf_counter() - t_start, "render_seconds": elapsed_render,
        "images_per_s": rendered / elapsed_render if elapsed_render > 0 else 0.0, "output": storage.url,
        "timing": timing, "nodes": nodes, "workers": workers,
        # Rate inside the workers, without cluster start-up and first-use kernel compilation.
        "worker_images_per_s": rendered / max(sum(s["seconds"] for s in stats), 1e-9) if stats else 0.0,
    }
    _print_summary(summary, resumed=cfg.num_shards - len(stats))
    return summary


def _print_summary(s: dict[str, Any], resumed: int, already_complete: bool = False) -> None:
    lines = ["build complete" + (" (already complete: nothing to do)" if already_complete else "")]
    lines.append(_summary_line("images", f"{s['images']} in {s['shards']} shards"
                               + (f" ({resumed} shards kept from a previous run)" if resumed and not already_complete else "")))
    if not already_complete:
        lines.append(_summary_line("wall time", f"{s['seconds']:.1f} s with {s['workers']} worker{'' if s['workers'] == 1 else 's'}"
                                   + (f" on {len(s['nodes'])} nodes" if len(s["nodes"]) > 1 else "")))
        steady = s.get("worker_images_per_s", 0.0)
        lines.append(_summary_line("speed", f"{s['images_per_s']:.0f} images/s overall"
                                   + (f", {steady:.0f} images/s per worker once started" if steady else "")))
        total = sum(s["timing"].values())
        if total > 0:
            share = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in s["timing"].items())
            lines.append(_summary_line("worker time", share))
    lines.append(_summary_line("output", s["output"]))
    print("\n".join(lines), flush=True)
