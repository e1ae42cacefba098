"""Where a build's files live: a local directory or any fsspec URL, with complete-or-absent writes.

A reader (or a resumed build) must never see half a shard under its final name:

* local files are written to a temporary name in the same directory, fsynced, then renamed with
  ``os.replace`` (atomic on POSIX), and the directory is fsynced;
* remote objects (s3, gs, ...) are written with one ``pipe`` of the whole object, which object
  stores make visible all at once or not at all.

``memory://`` works too, but only inside one process: Ray workers run in other processes and
would write into their own private memory filesystems, so builds refuse it unless ``--workers 0``.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from typing import Any

import fsspec

from synthface.errors import SynthError

TMP_MARK = ".tmp-"


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


class Storage:
    """One output location. Picklable (it is shipped to Ray workers), so it only holds strings."""

    def __init__(self, url: str, options: dict[str, Any] | None = None):
        text = str(url).strip()
        if not text:
            raise SynthError("the output location is empty: give a directory or an fsspec URL (e.g. data/syn or s3://bucket/syn)")
        self.options = dict(options or {})
        self.local = _is_local(text)
        if self.local:
            path = text[len("file://"):] if text.startswith("file://") else text
            self.protocol = "file"
            self.root = os.path.abspath(path or "/")
            if os.path.dirname(self.root) == self.root:
                raise SynthError(f"output {text!r} is the root of the filesystem: give a directory of its own, e.g. /data/syn")
            self.url = text.rstrip("/")
        else:
            self.protocol, path = text.split("://", 1)
            if not path.strip("/"):
                raise SynthError(f"output {text!r} names no bucket or path: give e.g. {self.protocol}://bucket/syn")
            self.url = self.root = f"{self.protocol}://{path.rstrip('/')}"
        self._fs = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_fs"} | {"_fs": None}

    @property
    def fs(self):
        if self._fs is None:
            try:
                self._fs = fsspec.filesystem(self.protocol, **self.options)
            except (ImportError, ValueError) as exc:
                raise SynthError(f"cannot open output {self.url!r}: {exc}") from None
        return self._fs

    def path(self, name: str) -> str:
        if self.local:
            return os.path.join(self.root, name)
        return f"{self.root}/{name}"

    def prepare(self) -> None:
        """Create the output location and check it can be written, before any work starts."""
        if self.local:
            if os.path.exists(self.root) and not os.path.isdir(self.root):
                raise SynthError(f"output {self.root!r} exists and is not a directory: choose another --out")
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as exc:
                raise SynthError(f"cannot create output directory {self.root!r}: {exc.strerror or exc}") from None
            probe = self.path(f".write-test{TMP_MARK}{uuid.uuid4().hex}")
            try:
                with open(probe, "wb"):
                    pass
                os.remove(probe)
            except OSError as exc:
                raise SynthError(f"output directory {self.root!r} is not writable: {exc.strerror or exc}") from None
        else:
            try:
                self.fs.makedirs(self.root, exist_ok=True)
            except Exception as exc:  # fsspec backends raise their own types
                raise SynthError(f"cannot use output {self.url!r}: {type(exc).__name__}: {exc}") from None

    def write(self, name: str, data: bytes) -> None:
        """Complete-or-absent write of one file."""
        if self.local:
            final = self.path(name)
            tmp = f"{final}{TMP_MARK}{uuid.uuid4().hex[:12]}"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, final)
            except BaseException:
                try:
                    os.remove(tmp)
                except OSError:
                    pass
                raise
            dir_fd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        else:
            self.fs.pipe_file(self.path(name), data)

    def read(self, name: str) -> bytes:
        if self.local:
            with open(self.path(name), "rb") as f:
                return f.read()
        return self.fs.cat_file(self.path(name))

    def exists(self, name: str) -> bool:
        if self.local:
            return os.path.exists(self.path(name))
        return self.fs.exists(self.path(name))

    def names(self) -> list[str]:
        """File names directly under the output (not recursive)."""
        if self.local:
            try:
                return sorted(os.listdir(self.root))
            except FileNotFoundError:
                return []
        try:
            self.fs.invalidate_cache()
            return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False))
        except FileNotFoundError:
            return []

    def remove(self, name: str) -> None:
        if self.local:
            try:
                os.remove(self.path(name))
            except FileNotFoundError:
                pass
        else:
            try:
                self.fs.rm_file(self.path(name))
            except FileNotFoundError:
                pass

    def sha256(self, name: str) -> tuple[str, int] | None:
        """(sha256 hex, size) of a file, or None if it is absent."""
        try:
            data = self.read(name)
        except FileNotFoundError:
            return None
        return hashlib.sha256(data).hexdigest(), len(data)


TMP_NAME = re.compile(rf"^(?P<base>.+){re.escape(TMP_MARK)}[0-9a-f]{{12}}$")  # what ``write`` names its temporary files


def ours(prefix: str) -> re.Pattern:
    """Names a build with this prefix writes (shards, stats, and their temporary names)."""
    p = re.escape(prefix)
    return re.compile(rf"^{p}-\d{{6,}}\.(tar|stats\.json)({re.escape(TMP_MARK)}[0-9a-f]{{12}})?$")


def temp_base(name: str) -> str | None:
    """The final name a temporary file of ``write`` was for, or None if ``name`` is not one."""
    m = TMP_NAME.match(name)
    return m.group("base") if m else None
