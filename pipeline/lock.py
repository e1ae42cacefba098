"""One build at a time per output: an exclusive lock held for the whole of a ``synth build``.

The lock is a small JSON file, ``schema.LOCK_NAME``, in the output, naming its holder (user, host,
pid, start time, command). What makes it exclusive depends on where the output is:

* **Local directories and shared mounts**: the file is locked with ``flock``, which the kernel
  releases when the holding process ends, however it ends (``kill -9`` included), and which NFS
  clients forward to the server, so builds on other hosts see it too. A lock file that nobody holds
  is left over from a build that ended without cleaning up; the next build takes it over and says
  whose it was. Where the filesystem offers no ``flock``, the file is created exclusively
  (``O_EXCL``) instead; one whose pid no longer runs on this host is taken over, and one from
  another host is refused with the path to delete if that build is gone.
* **S3 (and S3-compatible stores that honour conditional writes)**: the lock is a lease object,
  created with ``If-None-Match: *`` (exactly one of two racing builds gets it), renewed by a
  background thread every ``LEASE_S / 4`` seconds with ``If-Match`` on its last ETag, and deleted
  at the end. A lease not renewed for ``LEASE_S`` seconds (its build was killed or lost its
  network) is taken over with ``If-Match`` on the stale version, so two builds cannot both take it.
* **Other fsspec stores** (gs, azure, ...): the same lease, but created check-then-write through
  fsspec and read back; two builds started within the same second may both get it. Build into
  such stores from one place at a time.
"""

from __future__ import annotations

import errno
import getpass
import os
import platform
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import orjson

from synthface.errors import SynthError

from . import schema
from .storage import Storage

LEASE_S = 60.0  # an object-store lease not renewed for this long belongs to a build that is gone


def _me() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return {"owner": user, "host": platform.node(), "pid": os.getpid(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300],
            "token": uuid.uuid4().hex}


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        info = orjson.loads(data)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def describe(info: dict[str, Any] | None) -> str:
    if not info:
        return "another build (its lock file names no holder)"
    return (f"{info.get('owner', '?')}'s build (pid {info.get('pid', '?')} on {info.get('host', '?')}, "
            f"started {info.get('started', '?')})")


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True  # another user's process, or a pid we cannot judge: assume it runs
    return True


class BuildLock:
    """``with BuildLock(storage):`` holds the output's lock, or raises SynthError naming its holder."""

    def __init__(self, storage: Storage, lease_s: float = LEASE_S):
        self.storage = storage
        self.lease_s = float(lease_s)
        self.path = storage.path(schema.LOCK_NAME)
        self.info = _me()
        self.took_over: dict[str, Any] | None = None
        self._fd: int | None = None
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None

    # -- public ---------------------------------------------------------------------------------
    def __enter__(self) -> "BuildLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        if self.storage.local:
            self._acquire_local()
        else:
            self._acquire_remote()
        if self.took_over is not None:
            print(f"note: {self.storage.url} was locked by {describe(self.took_over)}, which is no longer running; "
                  "taking its lock over", file=sys.stderr, flush=True)

    def release(self) -> None:
        if self.storage.local:
            if self._fd is not None:
                try:
                    os.remove(self.path)  # while still holding it: a waiter that opened this file retries
                except OSError:
                    pass
                os.close(self._fd)
                self._fd = None
            elif self._exclusive:
                try:
                    os.remove(self.path)
                except OSError:
                    pass
                self._exclusive = False
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._etag is not None:
            try:
                current = _parse(self.storage.fs.cat_file(self.path))
                if current and current.get("token") == self.info["token"]:
                    self.storage.fs.rm_file(self.path)
            except (OSError, ValueError):
                pass
            self._etag = None

    # -- local ----------------------------------------------------------------------------------
    _exclusive = False

    def _refuse(self, holder: dict[str, Any] | None, extra: str = "") -> None:
        raise SynthError(f"{self.storage.url} is locked by {describe(holder)}: two builds into one output would "
                         f"mix their files; wait for it to finish or choose another --out{extra}")

    def _acquire_local(self) -> None:
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _parse(self._read_fd(fd))
                os.close(fd)
                self._refuse(holder)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    return self._acquire_exclusive()
                raise SynthError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
            # The file may have been removed (and recreated) by the previous holder between our open
            # and our flock: only the lock on the file now at the path counts.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = self._read_fd(fd)
            if previous.strip():
                self.took_over = _parse(previous) or {}
            self._write_fd(fd)
            self._fd = fd
            return

    @staticmethod
    def _read_fd(fd: int) -> bytes:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _write_fd(self, fd: int) -> None:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, orjson.dumps(self.info, option=orjson.OPT_INDENT_2))
        os.fsync(fd)

    def _acquire_exclusive(self) -> None:
        """No flock on this filesystem: create the file exclusively; a dead pid on this host is stale."""
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    with open(self.path, "rb") as f:
                        holder = _parse(f.read())
                except FileNotFoundError:
                    continue
                if holder and holder.get("host") == platform.node() and not _pid_alive(holder.get("pid")):
                    stale = f"{self.path}.stale-{uuid.uuid4().hex[:12]}"
                    try:
                        os.rename(self.path, stale)
                        os.remove(stale)
                    except FileNotFoundError:
                        pass
                    self.took_over = holder
                    continue
                self._refuse(holder, f" (if that build is gone, delete {self.path})")
            try:
                self._write_fd(fd)
            finally:
                os.close(fd)
            self._exclusive = True
            return
        self._refuse(None)

    # -- object stores --------------------------------------------------------------------------
    def _lease(self) -> bytes:
        return orjson.dumps({**self.info, "expires": time.time() + self.lease_s, "lease_s": self.lease_s},
                            option=orjson.OPT_INDENT_2)

    def _conditional(self) -> bool:
        return self.storage.protocol in ("s3", "s3a")

    def _put(self, data: bytes, **kwargs) -> str | None:
        out = self.storage.fs.pipe_file(self.path, data, **kwargs)
        etag = out.get("ETag") if isinstance(out, dict) else None
        return etag

    def _acquire_remote(self) -> None:
        fs = self.storage.fs
        for _ in range(5):
            try:
                self._etag = self._put(self._lease(), mode="create") or ""
            except FileExistsError:
                pass
            except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
                raise SynthError(f"cannot create the build lock {self.path}: {type(exc).__name__}: {exc}") from None
            else:
                if not self._conditional():
                    time.sleep(0.5)  # check-then-write stores: a racing build's write lands by now
                    current = _parse(fs.cat_file(self.path))
                    if not current or current.get("token") != self.info["token"]:
                        self._etag = None
                        self._refuse(current)
                break
            fs.invalidate_cache(self.path)
            try:
                etag = fs.info(self.path).get("ETag")
                holder = _parse(fs.cat_file(self.path))
            except FileNotFoundError:
                continue  # released meanwhile: try again
            expires = (holder or {}).get("expires")
            if isinstance(expires, (int, float)) and time.time() > expires:
                try:
                    if self._conditional() and etag:
                        self._etag = self._put(self._lease(), IfMatch=etag) or ""
                    else:
                        fs.rm_file(self.path)
                        continue
                except Exception:  # noqa: BLE001 - another build took it over first
                    continue
                self.took_over = holder
                break
            left = f"; its lease ends in {max(0, expires - time.time()):.0f} s unless renewed" if isinstance(expires, (int, float)) else ""
            self._refuse(holder, left)
        else:
            self._refuse(None)
        self._thread = threading.Thread(target=self._renew, name="synthface-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                if self._conditional() and self._etag:
                    self._etag = self._put(self._lease(), IfMatch=self._etag) or self._etag
                else:
                    current = _parse(self.storage.fs.cat_file(self.path))
                    if not current or current.get("token") != self.info["token"]:
                        raise RuntimeError(f"taken by {describe(current)}")
                    self._put(self._lease())
            except Exception as exc:  # noqa: BLE001
                self.lost = f"{type(exc).__name__}: {exc}"
                print(f"warning: could not renew the build lock {self.path} ({self.lost}); another build may "
                      "take it over", file=sys.stderr, flush=True)
