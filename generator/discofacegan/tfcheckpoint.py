"""Reading TensorFlow checkpoints (``NAME.index`` + ``NAME.data-*``) without TensorFlow.

The ``.index`` file is a LevelDB-format table (an SSTable): a sorted run of prefix-compressed
key/value entries in data blocks, an index block pointing at them, and a 48-byte footer. The key
of each entry is a variable name and its value a ``BundleEntryProto`` (dtype, shape, shard, byte
offset and size in the data file); the empty key holds a ``BundleHeaderProto``. The data files
hold the raw little-endian tensor bytes. TensorFlow writes the table uncompressed, so the reader
only needs varints, the block layout and a handful of protobuf fields, all parsed here by hand to
keep TensorFlow (and generated protobuf classes) out of the dependencies.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthface.errors import SynthError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER = 5  # compression type byte + masked crc32c

# tensorflow DataType enum -> numpy dtype (the numeric types a checkpoint of weights can hold)
DTYPES = {
    1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"), 5: np.dtype("<i2"),
    6: np.dtype("i1"), 9: np.dtype("<i8"), 10: np.dtype("?"), 17: np.dtype("<u2"), 19: np.dtype("<f2"),
    22: np.dtype("<u4"), 23: np.dtype("<u8"),
}
DTYPE_CODES = {v: k for k, v in DTYPES.items()}


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def parse_proto(buf: bytes) -> dict[int, list]:
    """Protobuf wire format -> {field number: [values]} (varints as int, length-delimited as bytes)."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value, pos = bytes(buf[pos : pos + length]), pos + length
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int


def _entry(name: str, value: bytes) -> TensorEntry:
    f = parse_proto(value)
    code = f.get(1, [0])[0]
    shape: list[int] = []
    for dim in parse_proto(f[2][0]).get(2, []) if 2 in f else []:
        shape.append(parse_proto(dim).get(1, [0])[0])
    if 7 in f:
        raise ValueError(f"variable {name!r} is stored as slices, which this reader does not support")
    dtype = DTYPES.get(code)
    return TensorEntry(
        name=name,
        dtype=dtype if dtype is not None else np.dtype("V1"),
        shape=tuple(shape),
        shard=f.get(3, [0])[0],
        offset=f.get(4, [0])[0],
        size=f.get(5, [0])[0],
    )


def _block_entries(data: bytes, handle: tuple[int, int]):
    offset, size = handle
    if offset + size + BLOCK_TRAILER > len(data):
        raise ValueError("block handle points past the end of the file")
    if data[offset + size] != 0:
        raise ValueError(f"compressed table blocks (type {data[offset + size]}) are not supported")
    block = data[offset : offset + size]
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * num_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _handle(buf: bytes, pos: int = 0) -> tuple[tuple[int, int], int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return (offset, size), pos


def read_index(path: str | Path) -> dict[str, TensorEntry]:
    """Variable name -> where and how its tensor is stored."""
    data = Path(path).read_bytes()
    if len(data) < FOOTER_SIZE or struct.unpack_from("<Q", data, len(data) - 8)[0] != TABLE_MAGIC:
        raise ValueError("not a TensorFlow checkpoint index (bad table magic)")
    footer = data[len(data) - FOOTER_SIZE :]
    _meta, pos = _handle(footer)
    index_handle, _ = _handle(footer, pos)
    entries: dict[str, TensorEntry] = {}
    for _last_key, handle_bytes in _block_entries(data, index_handle):
        handle, _ = _handle(handle_bytes)
        for key, value in _block_entries(data, handle):
            if key:  # the empty key is the bundle header
                name = key.decode("utf-8")
                entries[name] = _entry(name, value)
    return entries


class Checkpoint:
    """A checkpoint prefix (``.../stage1_epoch_395.ckpt``): list variables, read them as numpy arrays."""

    def __init__(self, prefix: str | Path):
        self.prefix = str(prefix)
        index = Path(self.prefix + ".index")
        if not index.is_file():
            raise SynthError(f"checkpoint index {index} not found: pass the checkpoint prefix (the path without .index)")
        try:
            self.entries = read_index(index)
        except (ValueError, struct.error, IndexError) as exc:
            raise SynthError(f"cannot read checkpoint index {index}: {exc}") from None
        self._shards: dict[int, bytes] = {}
        self._num_shards = max((e.shard for e in self.entries.values()), default=0) + 1

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def keys(self) -> list[str]:
        return sorted(self.entries)

    def _shard(self, shard: int) -> bytes:
        if shard not in self._shards:
            path = Path(f"{self.prefix}.data-{shard:05d}-of-{self._num_shards:05d}")
            if not path.is_file():
                raise SynthError(f"checkpoint data file {path} not found: copy it next to {self.prefix}.index")
            self._shards[shard] = path.read_bytes()
        return self._shards[shard]

    def read(self, name: str) -> np.ndarray:
        entry = self.entries.get(name)
        if entry is None:
            raise SynthError(f"checkpoint {self.prefix} has no variable {name!r}")
        if entry.dtype == np.dtype("V1"):
            raise SynthError(f"variable {name!r} in {self.prefix} has a dtype this reader does not support")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * entry.dtype.itemsize != entry.size:
            raise SynthError(f"variable {name!r} in {self.prefix}: {entry.size} bytes do not match shape {entry.shape}")
        blob = self._shard(entry.shard)
        if entry.offset + entry.size > len(blob):
            raise SynthError(f"variable {name!r} lies past the end of the data file of {self.prefix}: the file is truncated")
        arr = np.frombuffer(blob, dtype=entry.dtype, count=count, offset=entry.offset)
        return arr.reshape(entry.shape).astype(entry.dtype.newbyteorder("="), copy=True)
