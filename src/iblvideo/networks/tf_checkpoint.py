"""TensorFlow checkpoints (TensorBundle V2, as DeepLabCut's training saves them) read with NumPy only.

A checkpoint ``<prefix>`` is ``<prefix>.index``, an uncompressed LevelDB-format table mapping each
tensor's name to where its bytes lie, and ``<prefix>.data-<shard>-of-<shards>``, the raw tensors.
Every block of the table and every tensor carries a masked CRC32C, all verified here.
"""
from __future__ import annotations

import functools
import io
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iblvideo.errors import IblVideoError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the magic
BLOCK_TRAILER = 5  # compression type byte and masked CRC32C
# TensorFlow's DataType enum, for the dtypes network weights come in
DTYPES: dict[int, np.dtype] = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 9: np.dtype("<i8")}
DTYPE_NAMES = {4: "uint8", 5: "int16", 6: "int8", 7: "string", 8: "complex64", 10: "bool", 14: "bfloat16", 19: "float16"}
# training state, not the network: optimizer slots, Adam's beta powers, the step counter
SKIPPED = re.compile(r"/(Momentum|Adam|Adam_1|RMSProp|RMSProp_1)(/|$)|^(global_step|beta1_power|beta2_power)$")
SNAPSHOT = re.compile(r"snapshot-(\d+)\.index")

CRC32C_POLY = 0x82F63B78  # reflected Castagnoli polynomial
CRC_MASK_DELTA = 0xA282EAD8


def _byte_tables() -> np.ndarray:
    """Slicing-by-4 tables: row k advances the CRC register over a byte followed by k zero bytes."""
    tables = np.zeros((4, 256), np.uint32)
    crc = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        crc = np.where(crc & 1, (crc >> 1) ^ np.uint32(CRC32C_POLY), crc >> 1).astype(np.uint32)
    tables[0] = crc
    for k in range(1, 4):
        tables[k] = (tables[k - 1] >> 8) ^ tables[0][tables[k - 1] & 0xFF]
    return tables


TABLES = _byte_tables()

# A GF(2) operator on the 32-bit register, as the images of its 32 bits.
Operator = list[int]


def _apply(op: Operator, state: int) -> int:
    out = 0
    for bit in range(32):
        if state >> bit & 1:
            out ^= op[bit]
    return out


def _compose(outer: Operator, inner: Operator) -> Operator:
    return [_apply(outer, column) for column in inner]


@functools.cache
def _zero_operator(k: int) -> Operator:
    """The operator advancing the register over 2**k zero bytes."""
    if k == 0:
        step = [CRC32C_POLY] + [1 << (bit - 1) for bit in range(1, 32)]  # one zero bit
        for _ in range(3):
            step = _compose(step, step)
        return step
    half = _zero_operator(k - 1)
    return _compose(half, half)


@functools.cache
def _lane_tables(k: int) -> np.ndarray:
    """_zero_operator(k) as four 256-entry tables, one per byte of the register, to apply it to many registers."""
    op = _zero_operator(k)
    values = np.arange(256, dtype=np.uint32)
    tables = np.zeros((4, 256), np.uint32)
    for byte in range(4):
        for bit in range(8):
            tables[byte] ^= np.where(values >> bit & 1, np.uint32(op[8 * byte + bit]), np.uint32(0)).astype(np.uint32)
    return tables


def _register(words: np.ndarray) -> np.ndarray:
    """Registers, started at zero, after each row of little-endian 32-bit words (one lane per row)."""
    crc = np.zeros(words.shape[0], np.uint32)
    for column in np.ascontiguousarray(words.T):
        crc ^= column
        crc = TABLES[3][crc & 0xFF] ^ TABLES[2][(crc >> 8) & 0xFF] ^ TABLES[1][(crc >> 16) & 0xFF] ^ TABLES[0][crc >> 24]
    return crc


def crc32c(data: bytes | np.ndarray) -> int:
    """CRC32C (Castagnoli) of the bytes, computed in parallel over equal chunks and then combined.

    The register without its initial and final inversion is linear, so chunks are run from a zero
    register side by side, joined pairwise by advancing the earlier one over the later one's length,
    and the initial all-ones register is advanced over the whole length at the end; zero bytes put in
    front of the data leave a zero register unchanged, which pads the data to whole chunks.
    """
    raw = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    n = raw.size
    n_words = -(-n // 4)
    # chunks of 2**k words: few Python steps and wide NumPy ones; joins by cached operators
    k = min(10, max(0, round(np.log2(max(1.0, np.sqrt(n_words))))))
    lanes = max(1, -(-n_words >> k))
    padded = np.zeros(lanes << (k + 2), np.uint8)
    padded[padded.size - n:] = raw
    states = _register(padded.view("<u4").reshape(lanes, 1 << k))
    level = k + 2  # the chunks' length in bytes is 2**level
    while states.size > 1:
        if states.size % 2:
            states = np.concatenate([np.zeros(1, np.uint32), states])
        earlier, tables = states[0::2], _lane_tables(level)
        states = tables[0][earlier & 0xFF] ^ tables[1][(earlier >> 8) & 0xFF] ^ tables[2][(earlier >> 16) & 0xFF] ^ tables[3][earlier >> 24] ^ states[1::2]
        level += 1
    start = 0xFFFFFFFF
    for bit in range(n.bit_length()):
        if n >> bit & 1:
            start = _apply(_zero_operator(bit), start)
    return (start ^ int(states[0])) ^ 0xFFFFFFFF


def unmask(masked: int) -> int:
    """The CRC32C TensorFlow and LevelDB store masked (rotated and offset, so CRCs of CRCs differ)."""
    rotated = (masked - CRC_MASK_DELTA) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF


class _Bytes:
    """A cursor over untrusted bytes; running past the end is the file's fault."""

    def __init__(self, data: bytes, path: Path, what: str):
        self.data, self.pos, self.path, self.what = data, 0, path, what

    def fail(self, problem: str) -> IblVideoError:
        return IblVideoError(self.path, f"not a TensorFlow checkpoint index: {self.what} {problem}")

    def varint(self) -> int:
        value = shift = 0
        while True:
            if self.pos >= len(self.data) or shift > 63:
                raise self.fail("has a cut or overlong varint")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail("runs past its end")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def done(self) -> bool:
        return self.pos >= len(self.data)


def _fields(message: bytes, path: Path, what: str) -> list[tuple[int, int | bytes]]:
    """A protobuf message's (field number, value) pairs: integers for varints and fixed, bytes for the rest."""
    cursor = _Bytes(message, path, what)
    fields: list[tuple[int, int | bytes]] = []
    while not cursor.done():
        key = cursor.varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields.append((number, cursor.varint()))
        elif wire == 1:
            fields.append((number, struct.unpack("<Q", cursor.take(8))[0]))
        elif wire == 2:
            fields.append((number, cursor.take(cursor.varint())))
        elif wire == 5:
            fields.append((number, struct.unpack("<I", cursor.take(4))[0]))
        else:
            raise cursor.fail(f"has an unknown wire type {wire}")
    return fields


def _signed(value: int) -> int:
    """A protobuf int64 varint read as two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True)
class Entry:
    """Where one tensor lies in the data files and what it is."""

    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc: int | None
    sliced: bool


def _entry(value: bytes, path: Path, name: str) -> Entry:
    what = f"entry {name!r}"
    dtype, shard, offset, size, crc, sliced = 0, 0, 0, 0, None, False
    shape: list[int] = []
    for number, field in _fields(value, path, what):
        if number == 1 and isinstance(field, int):
            dtype = field
        elif number == 2 and isinstance(field, bytes):
            for dim_number, dim in _fields(field, path, what):
                if dim_number == 2 and isinstance(dim, bytes):
                    shape.append(next((_signed(v) for n, v in _fields(dim, path, what) if n == 1 and isinstance(v, int)), 0))
                elif dim_number == 3 and dim:
                    raise IblVideoError(path, f"tensor {name!r} has an unknown shape")
        elif number == 3 and isinstance(field, int):
            shard = field
        elif number == 4 and isinstance(field, int):
            offset = _signed(field)
        elif number == 5 and isinstance(field, int):
            size = _signed(field)
        elif number == 6 and isinstance(field, int):
            crc = field
        elif number == 7:
            sliced = True
    if any(d < 0 for d in shape) or offset < 0 or size < 0:
        raise IblVideoError(path, f"not a TensorFlow checkpoint index: {what} has a negative shape, offset or size")
    return Entry(dtype, tuple(shape), shard, offset, size, crc, sliced)


def _block(index: bytes, handle: _Bytes, path: Path) -> bytes:
    """The contents of the block a handle points to, its checksum verified."""
    offset, size = handle.varint(), handle.varint()
    if offset + size + BLOCK_TRAILER > len(index) - FOOTER_SIZE:
        raise IblVideoError(path, f"truncated TensorFlow checkpoint index: a block at {offset} runs past the end")
    contents = index[offset:offset + size]
    kind, stored = index[offset + size], struct.unpack("<I", index[offset + size + 1:offset + size + BLOCK_TRAILER])[0]
    if crc32c(contents + bytes([kind])) != unmask(stored):
        raise IblVideoError(path, f"corrupt TensorFlow checkpoint index: checksum mismatch in the block at {offset}")
    if kind != 0:
        raise IblVideoError(path, f"unsupported TensorFlow checkpoint index: compressed block (type {kind})")
    return contents


def _block_entries(block: bytes, path: Path) -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs of a table block, keys rebuilt from their shared prefixes."""
    if len(block) < 4:
        raise IblVideoError(path, "not a TensorFlow checkpoint index: a block too short for its restarts")
    restarts = struct.unpack("<I", block[-4:])[0]
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise IblVideoError(path, "not a TensorFlow checkpoint index: a block's restart count exceeds it")
    cursor = _Bytes(block[:end], path, "block")
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    while not cursor.done():
        shared, unshared, length = cursor.varint(), cursor.varint(), cursor.varint()
        if shared > len(key):
            raise cursor.fail("shares more of a key than the previous one has")
        key = key[:shared] + cursor.take(unshared)
        entries.append((key, cursor.take(length)))
    return entries


def _read_index(path: Path) -> dict[str, bytes]:
    """Every key and value of the index table (the header under the empty key)."""
    try:
        index = path.read_bytes()
    except OSError as error:
        raise IblVideoError(path, f"cannot read the checkpoint index ({error.strerror or error})") from None
    if len(index) < FOOTER_SIZE:
        raise IblVideoError(path, f"not a TensorFlow checkpoint index: {len(index)} bytes, too short for a table footer")
    if struct.unpack("<Q", index[-8:])[0] != TABLE_MAGIC:
        raise IblVideoError(path, "not a TensorFlow checkpoint index (no table magic number at its end; truncated or another format)")
    footer = _Bytes(index[-FOOTER_SIZE:-8], path, "footer")
    footer.varint(), footer.varint()  # the meta-index block, empty in checkpoints
    entries: dict[str, bytes] = {}
    for _, handle in _block_entries(_block(index, footer, path), path):
        for key, value in _block_entries(_block(index, _Bytes(handle, path, "block handle"), path), path):
            entries[key.decode("utf-8", "replace")] = value
    return entries


def _header(value: bytes | None, path: Path) -> int:
    """The number of data files, from the bundle header; refuses big-endian bundles."""
    if value is None:
        raise IblVideoError(path, "not a TensorFlow checkpoint index: no bundle header")
    shards, endianness = 1, 0
    for number, field in _fields(value, path, "header"):
        if number == 1 and isinstance(field, int):
            shards = field
        elif number == 2 and isinstance(field, int):
            endianness = field
    if endianness != 0:
        raise IblVideoError(path, "unsupported TensorFlow checkpoint: big-endian tensors")
    if not 1 <= shards <= 10000:
        raise IblVideoError(path, f"not a TensorFlow checkpoint index: {shards} data files")
    return shards


def _tensor(name: str, entry: Entry, data: Path, handle: io.BufferedReader) -> np.ndarray:
    if entry.sliced:
        raise IblVideoError(data, f"unsupported TensorFlow checkpoint: tensor {name!r} is saved in slices")
    dtype = DTYPES.get(entry.dtype)
    if dtype is None:
        kind = DTYPE_NAMES.get(entry.dtype, f"type {entry.dtype}")
        raise IblVideoError(data, f"unsupported TensorFlow checkpoint: tensor {name!r} is {kind} (float32, float64, int32 and int64 are read)")
    count = math.prod(entry.shape)
    if count * dtype.itemsize != entry.size:
        raise IblVideoError(data, f"corrupt TensorFlow checkpoint: tensor {name!r} of shape {entry.shape} has {entry.size} bytes")
    array = np.empty(count, dtype)
    handle.seek(entry.offset)
    handle.readinto(array.view(np.uint8).data)  # the length was checked against the index's extent
    if entry.crc is not None and crc32c(array) != unmask(entry.crc):
        raise IblVideoError(data, f"corrupt TensorFlow checkpoint data: checksum mismatch in tensor {name!r}")
    return array.reshape(entry.shape)


def read_checkpoint(prefix: Path) -> dict[str, np.ndarray]:
    """The network's tensors of a TensorFlow checkpoint by name; optimizer slots and the step counter left out."""
    prefix = Path(prefix)
    index = prefix.with_name(prefix.name + ".index")
    entries = _read_index(index)
    shards = _header(entries.pop("", None), index)
    every = {name: _entry(value, index, name) for name, value in entries.items()}
    wanted = {name: entry for name, entry in every.items() if not SKIPPED.search(name)}
    tensors: dict[str, np.ndarray] = {}
    for shard in range(shards):
        data = prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{shards:05d}")
        # the skipped tensors' bytes too: a file cut in them is cut all the same
        extent = max((entry.offset + entry.size for entry in every.values() if entry.shard == shard), default=0)
        names = [name for name, entry in wanted.items() if entry.shard == shard]
        try:
            with data.open("rb") as handle:
                length = handle.seek(0, io.SEEK_END)
                if length < extent:
                    raise IblVideoError(data, f"truncated TensorFlow checkpoint data: {length} bytes where the index has {extent}")
                for name in names:
                    tensors[name] = _tensor(name, wanted[name], data, handle)
        except OSError as error:
            raise IblVideoError(data, f"cannot read the checkpoint data ({error.strerror or error})") from None
    missing = sorted(set(wanted) - set(tensors))
    if missing:
        raise IblVideoError(index, f"not a TensorFlow checkpoint index: tensor {missing[0]!r} is in data file {wanted[missing[0]].shard} of {shards}")
    return tensors


def choose_snapshot(folder: Path, snapshotindex: int = -1) -> Path:
    """The checkpoint prefix DeepLabCut picks in a training folder: its snapshots ordered by iteration, then indexed."""
    folder = Path(folder)
    try:
        found = sorted((int(match.group(1)), match.group(0)) for p in folder.iterdir() if (match := SNAPSHOT.fullmatch(p.name)))
    except OSError as error:
        raise IblVideoError(folder, f"cannot list the model folder ({error.strerror or error})") from None
    if not found:
        raise IblVideoError(folder, "no DeepLabCut snapshot (snapshot-<iteration>.index) in this folder")
    if not -len(found) <= snapshotindex < len(found):
        raise IblVideoError(folder, f"snapshotindex {snapshotindex} but {len(found)} snapshots")
    return folder / f"snapshot-{found[snapshotindex][0]}"
