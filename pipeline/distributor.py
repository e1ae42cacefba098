"""Running shard jobs on workers: Ray actors (one per CPU or GPU slot) or the driver process itself.

Each actor loads the generator once and then takes shard after shard; at most ``IN_FLIGHT`` jobs
are queued on an actor at a time, so a slow node does not hoard work and memory stays bounded.
A job that raises is retried (on any worker) up to ``max_attempts``; a worker that dies (a crash,
``os._exit``, a lost node) is replaced by a new actor, and the job it was running counts one
attempt while the jobs queued behind it are resubmitted for free. Jobs that run out of attempts
are reported back instead of stopping the build, so every shard that can finish does.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from synthface.errors import SynthError

from .storage import Storage
from .worker import ShardWorker, single_thread_env, use_one_thread

IN_FLIGHT = 2
# Passed to Ray workers so they reach the same storage and import the same code as the driver.
ENV_PREFIXES = ("AWS_", "GOOGLE_", "GCS_", "AZURE_", "FSSPEC_", "S3_")
ENV_NAMES = ("PYTHONPATH", "NUMBA_CACHE_DIR")

Job = tuple[str, int]  # ("build" | "index", shard)
OnDone = Callable[[Job, Any], None]


@dataclass
class Failure:
    job: Job
    attempts: int
    error: str


def worker_env() -> dict[str, str]:
    env = single_thread_env()
    for name, value in os.environ.items():
        if name.startswith(ENV_PREFIXES) or name in ENV_NAMES:
            env[name] = value
    return env


def _describe(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if cause is not None and not isinstance(cause, type(exc)):
        exc = cause
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class LocalPool:
    """Runs jobs one by one in the driver (``--workers 0``): no Ray, for debugging and ``memory://``."""

    size = 1
    nodes: set[str] = set()

    def __init__(self, cfg: dict[str, Any], storage: Storage, *, device: str, batch_size: int):
        self.worker = ShardWorker(cfg, storage, device=device, batch_size=batch_size, name="driver")

    def run(self, jobs: list[Job], max_attempts: int, on_done: OnDone, tick: Callable[[], None]) -> list[Failure]:
        failures = []
        for job in jobs:
            for attempt in range(1, max_attempts + 1):
                try:
                    result = getattr(self.worker, job[0] if job[0] == "build" else "index_rows")(job[1])
                except Exception as exc:  # retried like a worker failure
                    if attempt == max_attempts:
                        failures.append(Failure(job, attempt, _describe(exc)))
                    continue
                on_done(job, result)
                break
            tick()
        return failures

    def close(self) -> None:
        pass


class RayPool:
    """A fixed number of worker actors on an embedded or existing Ray cluster."""

    def __init__(self, cfg: dict[str, Any], storage: Storage, *, workers: int | None, gpus_per_worker: float,
                 address: str | None, batch_size: int, max_jobs: int):
        import ray

        self.ray = ray
        init_kwargs: dict[str, Any] = dict(
            include_dashboard=False, log_to_driver=False, logging_level="ERROR", ignore_reinit_error=True,
        )
        if address:
            check_reachable(address)
            # Workers of an existing cluster were started by `ray start`, not by us: give them our
            # storage credentials and import path. (An embedded cluster inherits our environment,
            # and a runtime_env costs about a second of start-up.)
            init_kwargs["address"] = address
            init_kwargs["runtime_env"] = {"env_vars": worker_env()}
        else:
            # "local" always starts an embedded instance: without it Ray joins whatever RAY_ADDRESS or
            # a `ray start` left in its temp dir names, even a cluster stopped long ago.
            init_kwargs["address"] = "local"
            init_kwargs["num_cpus"] = max(int(workers or os.cpu_count() or 1), 1)
        if not address and os.environ.get("RAY_ADDRESS"):
            print(f"note: RAY_ADDRESS is set ({os.environ['RAY_ADDRESS']}) but --address is not: starting a local Ray "
                  "instance; pass --address to join that cluster", file=sys.stderr, flush=True)
        _init_ray(ray, address, init_kwargs)
        self._started = True
        resources = ray.cluster_resources()
        if workers is None:
            if gpus_per_worker > 0:
                workers = int(resources.get("GPU", 0) // gpus_per_worker)
            else:
                workers = int(resources.get("CPU", 1))
        if gpus_per_worker > 0 and resources.get("GPU", 0) < gpus_per_worker:
            self.close()
            raise SynthError(f"--gpus-per-worker {gpus_per_worker} but the Ray cluster has {resources.get('GPU', 0)} GPUs")
        self.size = max(1, min(int(workers), max_jobs))
        actor_cls = ray.remote(_RayWorker)
        self._options = dict(num_cpus=1, num_gpus=gpus_per_worker, max_restarts=0, max_task_retries=0)
        self._args = (cfg, storage)
        self._kwargs = dict(device="cuda" if gpus_per_worker > 0 else "cpu", batch_size=batch_size)
        self._cls = actor_cls
        self._generation = 0
        self.actors = [self._spawn(i) for i in range(self.size)]
        self.nodes: set[str] = set()

    def ready(self, timeout: float = 900.0) -> None:
        """Wait until every worker has started (loaded the generator); a worker that cannot start is
        one error here, before the build changes anything, instead of a failure per shard."""
        from ray.exceptions import GetTimeoutError

        try:
            self.ray.get([actor.ping.remote() for actor in self.actors], timeout=timeout)
        except GetTimeoutError:
            raise SynthError(f"the {self.size} workers did not start within {timeout:.0f} s: check that the cluster has "
                             "free CPUs (and GPUs) for them") from None
        except Exception as exc:  # noqa: BLE001 - the actor's constructor raised, or its process died
            raise SynthError(f"the workers could not start: {_describe(exc)}") from None

    def _spawn(self, slot: int):
        self._generation += 1
        return self._cls.options(**self._options).remote(*self._args, name=f"w{slot}.{self._generation}", **self._kwargs)

    def _replace(self, slot: int) -> None:
        try:
            self.ray.kill(self.actors[slot], no_restart=True)
        except Exception:
            pass
        self.actors[slot] = self._spawn(slot)

    def run(self, jobs: list[Job], max_attempts: int, on_done: OnDone, tick: Callable[[], None]) -> list[Failure]:
        ray = self.ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, WorkerCrashedError

        dead_errors = (RayActorError, ActorDiedError, ActorUnavailableError, WorkerCrashedError)
        queue: deque[Job] = deque(jobs)
        attempts: dict[Job, int] = {}
        failures: list[Failure] = []
        pending: dict[Any, tuple[int, Job]] = {}
        queued: list[deque] = [deque() for _ in self.actors]  # refs per slot, in submission order

        def submit(slot: int) -> None:
            while queue and len(queued[slot]) < IN_FLIGHT:
                job = queue.popleft()
                actor = self.actors[slot]
                ref = (actor.build if job[0] == "build" else actor.index_rows).remote(job[1])
                pending[ref] = (slot, job)
                queued[slot].append(ref)

        def charge(job: Job, error: str) -> None:
            attempts[job] = attempts.get(job, 0) + 1
            if attempts[job] >= max_attempts:
                failures.append(Failure(job, attempts[job], error))
            else:
                queue.append(job)

        while queue or pending:
            for slot in range(len(self.actors)):
                submit(slot)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                if ref not in pending:  # already handled as part of a dead actor's queue
                    continue
                slot, job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except dead_errors as exc:
                    # The first job queued on the slot was the one running when the worker died.
                    running = queued[slot][0] if queued[slot] else ref
                    for other in list(queued[slot]):
                        if other is ref:
                            continue
                        _, other_job = pending.pop(other, (slot, None))
                        if other_job is None:
                            continue
                        if other is running:
                            charge(other_job, _describe(exc))
                        else:
                            queue.appendleft(other_job)
                    if running is ref:
                        charge(job, _describe(exc))
                    else:
                        queue.appendleft(job)
                    queued[slot].clear()
                    self._replace(slot)
                    continue
                except Exception as exc:  # the job raised; the worker is fine
                    queued[slot].remove(ref)
                    charge(job, _describe(exc))
                    continue
                queued[slot].remove(ref)
                if isinstance(result, dict) and "stats" in result:
                    self.nodes.add(result["stats"]["node"])
                on_done(job, result)
            tick()
        return failures

    def close(self) -> None:
        if getattr(self, "_started", False):
            for actor in getattr(self, "actors", []):
                try:
                    self.ray.kill(actor, no_restart=True)
                except Exception:
                    pass
            self.ray.shutdown()
            self._started = False


_AUTH_WORDS = ("InvalidAuthToken", "Unauthenticated", "authentication token")
# A cluster that is up answers at once; Ray's default is ~20 attempts a second apart, each of which
# logs a line to stderr from C++, when the cluster refuses us (e.g. a wrong token).
CONNECT_ATTEMPTS = "5"


def _init_ray(ray, address: str | None, init_kwargs: dict[str, Any]) -> None:
    """``ray.init`` with its C++ log lines held back: on success they are passed on, on failure they
    are read for the cause (an authentication token the cluster refuses is the usual one) and the
    user gets one line."""
    where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
    if address:
        os.environ.setdefault("RAY_gcs_server_port_wait_time_s", CONNECT_ATTEMPTS)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        error: BaseException | None = None
        try:
            ray.init(**init_kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises plain Exception for a node that does not start
            error = exc
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
        if error is None:
            if text.strip():
                sys.stderr.write(text)
            return
    if any(word in text or word in str(error) for word in _AUTH_WORDS):
        raise SynthError(f"{where} refused this machine's authentication token: set RAY_AUTH_MODE=token and the "
                         "cluster's RAY_AUTH_TOKEN in this environment (see examples/ray_cluster.md)")
    detail = " ".join(str(error).split())[:300]
    import resource

    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY:
        detail += (f" (files are limited to {limit // 1024} KB here, ulimit -f, too little for Ray's object store: raise "
                   "the limit, or build in this process with --workers 0)")
    raise SynthError(f"cannot start or join {where}: {detail}") from None


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on a HOST:PORT nobody listens on; Ray itself retries for minutes."""
    host, sep, port = address.replace("ray://", "").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise SynthError(f"no Ray cluster answers at {address} ({exc.strerror or exc}): start one with "
                         "`ray start --head` or drop --address to use a local one") from None


class _RayWorker(ShardWorker):
    def __init__(self, cfg, storage, **kwargs):
        import ray

        use_one_thread()
        super().__init__(cfg, storage, node=ray.get_runtime_context().get_node_id(), **kwargs)
