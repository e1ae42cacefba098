"""The driver of ``synth build``: check the output, resume what is done, run the rest, record it.

Order of work, and why:

1. Validate everything (config, generator, options, output location) before starting Ray, so bad
   input fails in a fraction of a second and leaves existing data untouched.
2. Take the output's lock (``lock``): one build per output, a second is refused naming the first.
3. Read what is there: the same config resumes, a different one is refused unless ``--overwrite``
   (which deletes only the files a synthface manifest in the output lists, and refuses an output
   whose manifest is not a synthface one). Keep the shards the manifest lists whose bytes still
   hash to the recorded sha256, and adopt shards that finished after the last manifest update
   (their stats file names the sha256); everything else is rendered again under the same
   deterministic name, so nothing is duplicated.
4. Start the workers (Ray, resources, the generator on every worker). Only then does the output
   change: ``--overwrite``'s deletions, leftover temporary files, the manifest.
5. Render on the workers, rewriting the manifest at most once per ``manifest_interval`` seconds.
6. Write ``index.parquet`` (rows for skipped shards are recomputed from the sampler, without
   rendering) and the final manifest with the index's sha256, and print a summary. A complete
   build whose index no longer matches that sha256 gets its index written again.
7. Then the files for other readers (``card``: wids index, preview, dataset card), on every run
   that ends complete, so a no-op re-run writes them again, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from synthface.errors import BuildFailed, SynthError
from synthface.generator import registry

from . import card, index, manifest, schema
from .config import BuildConfig
from .distributor import LocalPool, RayPool, check_reachable
from .lock import BuildLock
from .storage import TMP_MARK, Storage, ours, temp_base


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
    if opts.workers == 0 and opts.gpus_per_worker > 0:
        import torch

        if not torch.cuda.is_available():
            raise SynthError("--gpus-per-worker with --workers 0 renders on this machine's GPU, but PyTorch sees none: "
                             "drop --gpus-per-worker, or run where a GPU is visible")
    if opts.address and opts.workers != 0:
        check_reachable(opts.address)


def _is_ours(name: str, prefix: str) -> bool:
    """A name a build with this prefix writes under its final name (not a temporary one)."""
    return bool(ours(prefix).match(name)) and TMP_MARK not in name or name in (schema.MANIFEST_NAME, schema.INDEX_NAME)


def _listed(man: dict[str, Any]) -> set[str]:
    """The files a manifest accounts for: its shards (listed, or in its pattern's range), their stats
    files, its index and itself."""
    prefix = man["config"]["prefix"]
    names = {entry["name"] for entry in man["shards"]} | {schema.MANIFEST_NAME, schema.INDEX_NAME}
    names |= set((man.get("files") or {}).values())  # the card files (card.check_output has made sure they are ours)
    for shard in range(int(man.get("num_shards") or 0)):
        names.add(schema.shard_name(prefix, shard))
        names.add(schema.stats_name(prefix, shard))
    return names


def _refuse_directories(storage: Storage, names: list[str]) -> None:
    """A directory where a build reads or writes a file was not made by synthface: never touch it."""
    if not storage.local:
        return
    for name in names:
        if os.path.isdir(storage.path(name)):
            raise SynthError(f"{storage.path(name)} is a directory where a build keeps a file; synthface did not make "
                             "it and will not touch it: move it away or choose another --out")


def _existing(storage: Storage, cfg: BuildConfig, gen: dict[str, Any], overwrite: bool
              ) -> tuple[dict[str, Any] | None, list[str]]:
    """(the manifest to resume from, the files --overwrite will delete), reading only: nothing is
    deleted or written here. Refuses an output that does not match, or whose files no synthface
    manifest accounts for."""
    names = storage.names()
    _refuse_directories(storage, [n for n in names if _is_ours(temp_base(n) or n, cfg.prefix)])
    remedy = ("--overwrite deletes only files a synthface manifest lists, so move it away yourself or choose another --out"
              if overwrite else "move it away or choose another --out")
    old = manifest.read(storage, remedy)
    if old is None:
        found = [n for n in names if _is_ours(n, cfg.prefix)]
        if found:
            raise SynthError(f"{storage.url} already holds {found[0]} but no {schema.MANIFEST_NAME}, so synthface cannot tell "
                             "whose it is" + (": --overwrite deletes only files a synthface manifest lists; remove them yourself "
                                              "or choose another --out" if overwrite else
                                              ": remove it yourself or choose another --out"))
        return None, []
    if overwrite:
        listed = _listed(old)
        delete = [n for n in names if n in listed or temp_base(n) in listed]
        _refuse_directories(storage, delete)
        left = [n for n in names if n not in delete and _is_ours(n, cfg.prefix)]
        if left:
            raise SynthError(f"{storage.url} holds {left[0]}, which its {schema.MANIFEST_NAME} does not list and this build "
                             "would replace: --overwrite deletes only files the manifest lists; remove it yourself or "
                             "choose another --out")
        # The manifest goes last: until then an interrupted --overwrite still knows what it was deleting.
        delete.sort(key=lambda n: n == schema.MANIFEST_NAME)
        return None, delete
    previous = {"schema": old.get("schema"), "config": old.get("config"),
                "generator": {k: (old.get("generator") or {}).get(k) for k in ("name", "version")}}
    diff = manifest.differences(previous, manifest.identity(cfg, gen))
    if diff:
        more = f" (and {len(diff) - 1} more)" if len(diff) > 1 else ""
        raise SynthError(f"{storage.url} holds a different build ({diff[0]}{more}): re-run with the same settings to resume, "
                         "pass --overwrite to replace it, or choose another --out")
    return old, []


def _remove_leftovers(storage: Storage, prefix: str) -> None:
    """Temporary files of an interrupted run (local outputs only; object stores have none)."""
    for name in storage.names():
        base = temp_base(name)
        if base is not None and (_is_ours(base, prefix) or base in card.FILES):
            storage.remove(name)


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
        except (ValueError, KeyError, TypeError, OSError):
            continue

    def check(item):
        shard, entry = item
        name = schema.shard_name(cfg.prefix, shard)
        if not (0 <= shard < cfg.num_shards) or entry.get("name") != name or name not in names:
            return None
        try:
            got = storage.sha256(name)
        except OSError:
            return None
        expected_count = min(cfg.shard_size, cfg.num_samples - shard * cfg.shard_size)
        if got is None or got[0] != entry["sha256"] or entry["count"] != expected_count:
            return None
        return shard, {"name": name, "count": entry["count"], "sha256": got[0], "bytes": got[1]}

    with ThreadPoolExecutor(8) as pool:
        return dict(r for r in pool.map(check, sorted(claims.items())) if r is not None)


def _index_intact(storage: Storage, old: dict[str, Any] | None) -> bool:
    """Whether index.parquet holds exactly the bytes the manifest recorded for it."""
    if not old or "index_sha256" not in old:
        return False
    try:
        got = storage.sha256(schema.INDEX_NAME)
    except OSError:
        return False
    return got == (old["index_sha256"], old["index_bytes"])


def _write_or_fail(storage: Storage, name: str, data: bytes, kept: int) -> None:
    """Write one of the driver's files; a full disk or a lost store ends the build like failed shards do."""
    try:
        storage.write(name, data)
    except OSError as exc:
        raise BuildFailed(f"cannot write {storage.path(name)} ({exc.strerror or type(exc).__name__}): the {kept} "
                          "completed shards are kept: free space (or fix the storage) and re-run the same command") from None


def _write_card(storage: Storage, final: dict[str, Any], kept: int) -> None:
    """The card files (``card.write``), after the final manifest; a full disk there ends like one anywhere."""
    try:
        card.write(storage, final)
    except OSError as exc:
        raise BuildFailed(f"cannot write the dataset card files in {storage.url} ({exc.strerror or type(exc).__name__}): "
                          f"the {kept} completed shards are kept: free space (or fix the storage) and re-run the same "
                          "command") from None


def _start_pool(cfg_dict: dict[str, Any], storage: Storage, opts: RunOptions, jobs: int):
    """The workers, started and answering, before anything in the output changes."""
    if opts.workers == 0:
        return LocalPool(cfg_dict, storage, device="cuda" if opts.gpus_per_worker > 0 else "cpu",
                         batch_size=opts.batch_size)
    pool = RayPool(cfg_dict, storage, workers=opts.workers, gpus_per_worker=opts.gpus_per_worker,
                   address=opts.address, batch_size=opts.batch_size, max_jobs=max(jobs, 1))
    try:
        pool.ready()
    except BaseException:
        pool.close()
        raise
    return pool


def _summary_line(label: str, value: Any) -> str:
    return f"  {label:<11} {value}"


def run(cfg: BuildConfig, opts: RunOptions) -> dict[str, Any]:
    """Build (or resume) a dataset; returns the summary. Raises BuildFailed if shards still fail.

    Everything that can be checked is checked before the output changes: the config and generator,
    the options, the output location, the lock, the existing files, and that the workers start."""
    t_start = time.perf_counter()
    gen = generator_info(cfg)
    storage = Storage(opts.out, opts.storage_options)
    check_options(opts, storage)
    storage.prepare()
    with BuildLock(storage) as lock:
        return _run_locked(cfg, opts, gen, storage, lock, t_start)


def _run_locked(cfg: BuildConfig, opts: RunOptions, gen: dict[str, Any], storage: Storage, lock: BuildLock,
                t_start: float) -> dict[str, Any]:
    card.check_output(storage)
    old, to_delete = _existing(storage, cfg, gen, opts.overwrite)
    done = _completed(storage, cfg, old) if old else {}
    index_intact = _index_intact(storage, old)
    if bool(old and old.get("complete")) and len(done) == cfg.num_shards and index_intact:
        final = manifest.make(cfg, gen, done, complete=True, index=(old["index_sha256"], old["index_bytes"]))
        _write_or_fail(storage, schema.MANIFEST_NAME, manifest.dumps(final), len(done))
        _write_card(storage, final, len(done))
        summary = {"images": cfg.num_samples, "shards": cfg.num_shards, "rendered_images": 0, "rendered_shards": 0,
                   "seconds": time.perf_counter() - t_start, "images_per_s": 0.0, "output": storage.url,
                   "timing": {}, "nodes": [], "workers": 0}
        _print_summary(summary, resumed=len(done), already_complete=True)
        return summary

    todo = [("build", s) for s in range(cfg.num_shards) if s not in done]
    jobs = todo + [("index", s) for s in sorted(done)]
    cfg_dict = cfg.to_dict()
    t_render = time.perf_counter()
    pool = _start_pool(cfg_dict, storage, opts, len(jobs))
    rows: dict[int, dict[str, Any]] = {}
    stats: list[dict[str, Any]] = []
    bar = None
    try:
        # Only now, with every check passed and the workers up, does the output change.
        for name in to_delete:
            storage.remove(name)
        _remove_leftovers(storage, cfg.prefix)
        _write_or_fail(storage, schema.MANIFEST_NAME, manifest.dumps(manifest.make(cfg, gen, done, complete=False)), len(done))

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
                _write_or_fail(storage, schema.MANIFEST_NAME, manifest.dumps(manifest.make(cfg, gen, done, complete=False)),
                               len(done))
                state["dirty"], state["last"] = False, time.monotonic()

        failures = pool.run(jobs, opts.max_attempts, on_done, tick) if jobs else []
    finally:
        if bar is not None:
            bar.close()
        nodes = sorted(pool.nodes)
        workers = pool.size
        pool.close()
    _write_or_fail(storage, schema.MANIFEST_NAME, manifest.dumps(manifest.make(cfg, gen, done, complete=False)), len(done))
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
    if lock.lost:
        raise BuildFailed(f"the build lock on {storage.url} could not be renewed ({lock.lost}), so another build may have "
                          "written there too: run synth verify, and re-run the same command")

    index_bytes = index.to_bytes(index.table([rows[s] for s in range(cfg.num_shards)]))
    _write_or_fail(storage, schema.INDEX_NAME, index_bytes, len(done))
    digest = hashlib.sha256(index_bytes).hexdigest()
    final = manifest.make(cfg, gen, done, complete=True, index=(digest, len(index_bytes)))
    _write_or_fail(storage, schema.MANIFEST_NAME, manifest.dumps(final), len(done))
    _write_card(storage, final, len(done))
    rendered = sum(s["count"] for s in stats)
    timing = {k: sum(s["timing"][k] for s in stats) for k in ("sample", "render", "encode", "write")}
    summary = {
        "images": cfg.num_samples, "shards": cfg.num_shards, "rendered_images": rendered, "rendered_shards": len(stats),
        "seconds": time.perf_counter() - t_start, "render_seconds": elapsed_render,
        "images_per_s": rendered / elapsed_render if elapsed_render > 0 else 0.0, "output": storage.url,
        "timing": timing, "nodes": nodes, "workers": workers,
        # Rate inside the workers, without cluster start-up and first-use kernel compilation.
        "worker_images_per_s": rendered / max(sum(s["seconds"] for s in stats), 1e-9) if stats else 0.0,
        "index_rebuilt": bool(old) and not todo and not index_intact,
    }
    _print_summary(summary, resumed=cfg.num_shards - len(stats))
    return summary


def _print_summary(s: dict[str, Any], resumed: int, already_complete: bool = False) -> None:
    lines = ["build complete" + (" (already complete: nothing to do)" if already_complete else "")]
    lines.append(_summary_line("images", f"{s['images']} in {s['shards']} shards"
                               + (f" ({resumed} shards kept from a previous run)" if resumed and not already_complete else "")
                               + ("; index.parquet written again: it did not match the manifest" if s.get("index_rebuilt") else "")))
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
