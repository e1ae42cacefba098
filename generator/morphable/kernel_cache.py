"""Keep numba's on-disk kernel cache consistent across the package's modules.

numba keys a cached kernel on its own source file only, but our kernels inline helpers from the
sibling modules (``render`` inlines ``shading``, ``raster`` and ``background``): after an edit to a
helper, a stale compiled kernel would be loaded silently. So the cache is tagged with a hash of
all the package's sources and its import name (cached kernels refer to their modules by name) and
cleared when that hash changes. Runs once, at package import.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def sources_digest() -> str:
    h = hashlib.sha256(__name__.encode())
    for path in sorted(_HERE.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def invalidate_stale_kernels() -> None:
    cache = _HERE / "__pycache__"
    stamp = cache / "kernels.digest"
    digest = sources_digest()
    try:
        if stamp.exists() and stamp.read_text().strip() == digest:
            return
        if cache.is_dir():
            for path in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
                path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:  # a read-only installation: numba then compiles in memory, which is still correct
        pass
