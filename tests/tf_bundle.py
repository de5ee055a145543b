"""A TensorBundle V2 writer for tests only: the inverse of ``iblvideo.networks.tf_checkpoint``'s reader.

One data file, one uncompressed table block holding the header (under the empty key) and every
tensor's entry, float32 little-endian, each block and tensor with its masked CRC32C.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from iblvideo.networks.tf_checkpoint import CRC_MASK_DELTA, FOOTER_SIZE, TABLE_MAGIC, crc32c

FLOAT32 = 1


def mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + CRC_MASK_DELTA) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value)


def entry(shape: tuple[int, ...], offset: int, size: int, crc: int) -> bytes:
    dims = b"".join(field(2, field(1, d)) for d in shape)
    return (field(1, FLOAT32) + field(2, dims) + field(3, 0) + field(4, offset) + field(5, size)
            + varint(6 << 3 | 5) + struct.pack("<I", mask(crc)))


def block(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """A table block of (key, value) pairs, no key sharing, one restart point."""
    body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in pairs)
    return body + struct.pack("<II", 0, 1)


def write_bundle(prefix: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write ``tensors`` as the checkpoint ``<prefix>.index`` and ``<prefix>.data-00000-of-00001``."""
    data, pairs, offset = bytearray(), [(b"", field(1, 1) + field(2, 0))], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name], dtype="<f4")
        raw = array.tobytes()
        pairs.append((name.encode(), entry(array.shape, offset, len(raw), crc32c(array))))
        data += raw
        offset += len(raw)
    prefix.with_name(prefix.name + ".data-00000-of-00001").write_bytes(bytes(data))
    index = bytearray()

    def put(contents: bytes) -> bytes:
        handle = varint(len(index)) + varint(len(contents))
        index.extend(contents + b"\x00" + struct.pack("<I", mask(crc32c(contents + b"\x00"))))
        return handle

    table = put(block(pairs))
    meta = put(block([]))
    top = put(block([(pairs[-1][0], table)]))
    footer = (meta + top).ljust(FOOTER_SIZE - 8, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    prefix.with_name(prefix.name + ".index").write_bytes(bytes(index) + footer)
