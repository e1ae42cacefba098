"""Image encoding and reproducible tar bytes.

Shards are assembled in memory and written in one go (see ``storage``), so this module only
makes bytes. Tar headers are written here rather than through ``tarfile``: every member gets
mode 0644, uid/gid 0, empty user and group names and mtime 0, and members follow the order of
the plan, so the same samples always give the same bytes. Building a header this way costs a few
microseconds, against tens for ``tarfile.TarInfo`` or webdataset's ``TarWriter`` per member.
"""

from __future__ import annotations

import io

import numpy as np
import simplejpeg
from PIL import Image

BLOCK = 512
# A ustar header: name (100), mode, uid, gid (8 each), size (12), mtime (12), checksum (8),
# typeflag (1), linkname (100), magic "ustar\0" + version "00", then zeros (user and group names,
# devices, prefix). Only name, size and checksum vary, so the rest is built once and the checksum
# (the byte sum of the header with the checksum field as spaces) is updated incrementally.
_MID = b"0000644\x00" + b"0000000\x00" * 2
_MTIME = b"00000000000\x00"
_TAIL = (b"0" + b"\x00" * 100 + b"ustar\x0000").ljust(BLOCK - 156, b"\x00")
_FIXED_SUM = sum(_MID) + sum(_MTIME) + sum(_TAIL) + 8 * ord(" ")


def _header(name: bytes, size: int) -> bytes:
    if len(name) > 100:
        raise ValueError(f"tar member name too long: {name!r}")
    size_field = b"%011o\x00" % size
    checksum = _FIXED_SUM + sum(name) + sum(size_field)
    return name.ljust(100, b"\x00") + _MID + size_field + _MTIME + b"%06o\x00 " % checksum + _TAIL


class TarBuilder:
    """Appends members to an in-memory tar; ``getvalue`` closes the archive with two zero blocks."""

    def __init__(self):
        self._parts: list[bytes] = []
        self.size = 0

    def add(self, name: str, data: bytes) -> None:
        self._parts.append(_header(name.encode("ascii"), len(data)))
        self._parts.append(data)
        pad = -len(data) % BLOCK
        if pad:
            self._parts.append(b"\x00" * pad)
        self.size += BLOCK + len(data) + pad

    def getvalue(self) -> bytes:
        return b"".join(self._parts) + b"\x00" * (2 * BLOCK)


def encode_image(image: np.ndarray, fmt: str, quality: int) -> bytes:
    """One HxWx3 uint8 RGB image -> file bytes. simplejpeg for JPEG (about twice as fast as PIL).

    JPEG uses 4:2:0 chroma subsampling, as the JPEGs of real face datasets (and OpenCV's and PIL's
    defaults) do; it encodes ~35% faster than 4:4:4 at 112x112.
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if fmt == "jpg":
        return simplejpeg.encode_jpeg(image, quality=quality, colorspace="RGB", colorsubsampling="420")
    buf = io.BytesIO()
    if fmt == "png":
        # Fixed settings: PNG bytes depend on the compression level.
        Image.fromarray(image).save(buf, format="PNG", compress_level=6)
    elif fmt == "webp":
        Image.fromarray(image).save(buf, format="WEBP", quality=quality, method=4)
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return buf.getvalue()


def decode_image(data: bytes, fmt: str) -> np.ndarray:
    if fmt == "jpg":
        return simplejpeg.decode_jpeg(data, colorspace="RGB")
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))
