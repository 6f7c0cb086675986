"""tf.train.Example serialization written out byte by byte, for the ExampleGens' hot loop.

Building an Example through the protobuf API costs tens of microseconds (a message object
per feature and per list); the wire format of Example is small and fixed
(tensorflow/core/example/{example,feature}.proto), so the bytes are joined here instead,
several times faster, and equal to ``SerializeToString(deterministic=True)`` of the same
Example (map entries sorted by key): tests/unit/test_data.py checks that on random examples.
"""

from __future__ import annotations

import struct
from typing import Iterable, Mapping

_FLOAT = struct.Struct("<f")


_ONE_BYTE = [bytes((i,)) for i in range(128)]


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative int64 as its 64-bit two's complement (10 bytes)."""
    if 0 <= value < 128:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: tag byte, length, payload."""
    return _ONE_BYTE[tag] + varint(len(payload)) + payload


def value(data: bytes) -> bytes:
    """One entry of a BytesList (join entries to make the list's payload)."""
    return b"\n" + varint(len(data)) + data


def bytes_list(values: Iterable[bytes]) -> bytes:
    """A Feature holding a BytesList of ``values``."""
    return _field(0x0A, b"".join(value(v) for v in values))


def bytes_list_of_entries(entries: bytes) -> bytes:
    """A Feature holding a BytesList whose entries (``value`` of each) are already joined."""
    return _field(0x0A, entries)


def int64_list(values: Iterable[int]) -> bytes:
    """A Feature holding an Int64List (packed; an empty list has no packed field)."""
    packed = b"".join(varint(int(v)) for v in values)
    return _field(0x1A, _field(0x0A, packed) if packed else b"")


def float_list(values: Iterable[float]) -> bytes:
    """A Feature holding a FloatList (packed float32; an empty list has no packed field)."""
    packed = b"".join(_FLOAT.pack(v) for v in values)
    return _field(0x12, _field(0x0A, packed) if packed else b"")


_KEYS: dict = {}


def _key(name: str) -> bytes:
    """The map entry's key field of feature ``name`` (cached: the names repeat)."""
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = _field(0x0A, name.encode("utf-8"))
    return key


def example(features: Mapping[str, bytes]) -> bytes:
    """A serialized Example of name -> serialized Feature (``bytes_list``, ``int64_list``,
    ``float_list``), entries in key order as deterministic serialization writes them."""
    entries = b"".join(_field(0x0A, _key(name) + b"\x12" + varint(len(feature)) + feature)
                       for name, feature in sorted(features.items()))
    return _field(0x0A, entries)
