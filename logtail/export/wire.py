"""OTLP LogRecord fields written as protobuf bytes directly, for the shapes nearly every attribute has.

A string, int, double or bool attribute and the record's own fields are a tag, a length and the value's bytes;
writing them here (compiled, see setup.py) costs a fraction of filling upb messages field by field. Any other
value (lists, maps, integers beyond int64) comes serialized from the caller. Fields are written in field-number
order with proto3's defaults left out, as upb writes them, so the bytes are the same (tests/test_encode.py).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from parsers.event import Event

# Numbers in log text can exceed int64; such values travel as their decimal text.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_UINT64: Final = 1 << 64
_FIXED64: Final = struct.Struct("<Q").pack
_DOUBLE: Final = struct.Struct("<d").pack

# LogRecord: time_unix_nano (1, fixed64), severity_number (2), severity_text (3), body (5), attributes (6),
# observed_time_unix_nano (11, fixed64), event_name (12). KeyValue: key (1), value (2). AnyValue: string (1),
# bool (2), int (3), double (4, fixed64).
_TIME: Final = b"\x09"
_SEVERITY_NUMBER: Final = b"\x10"
_SEVERITY_TEXT: Final = b"\x1a"
_BODY: Final = b"\x2a"
_ATTRIBUTE: Final = b"\x32"
_OBSERVED: Final = b"\x59"
_EVENT_NAME: Final = b"\x62"
_KEY: Final = b"\x0a"
_VALUE: Final = b"\x12"
_STRING: Final = b"\x0a"
_TRUE: Final = b"\x10\x01"
_FALSE: Final = b"\x10\x00"
_INT: Final = b"\x18"
_DOUBLE_TAG: Final = b"\x21"


# Varints of the lengths most fields have, made once.
_SHORT: Final = 1 << 14
_VARINTS: Final = [bytes((n,)) if n < 0x80 else bytes((n & 0x7F | 0x80, n >> 7)) for n in range(_SHORT)]


def varint(n: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    if n < _SHORT:
        return _VARINTS[n]
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _delimited(tag: bytes, data: bytes) -> bytes:
    return tag + varint(len(data)) + data


def string_value(text: str) -> bytes:
    """AnyValue{string_value}, serialized."""
    return _delimited(_STRING, text.encode())


def _string_attribute(key: bytes, value: bytes) -> bytes:
    """The LogRecord `attributes` field for a KeyValue with a string value, joined once."""
    value_size = varint(len(value))
    any_size = varint(1 + len(value_size) + len(value))
    key_size = varint(len(key))
    pair = 1 + len(key_size) + len(key) + 1 + len(any_size) + 1 + len(value_size) + len(value)
    return b"".join((_ATTRIBUTE, varint(pair), _KEY, key_size, key, _VALUE, any_size, _STRING, value_size, value))


def attribute(key: str, value: object, other: Callable[[object], bytes]) -> bytes:
    """The LogRecord `attributes` field for one KeyValue; `other(value)` serializes the AnyValue of other shapes."""
    kind = type(value)
    if kind is str and key:
        assert isinstance(value, str)
        return _string_attribute(key.encode(), value.encode())
    if kind is str:
        assert isinstance(value, str)
        data = string_value(value)
    elif kind is bool:
        data = _TRUE if value else _FALSE
    elif kind is int:
        assert isinstance(value, int)
        if INT64_MIN <= value <= INT64_MAX:
            data = _INT + varint(value if value >= 0 else value + _UINT64)
        else:
            data = other(value)
    elif kind is float:
        assert isinstance(value, float)
        data = _DOUBLE_TAG + _DOUBLE(value)
    else:
        data = other(value)
    pair = _delimited(_VALUE, data)
    if key:
        pair = _delimited(_KEY, key.encode()) + pair
    return _delimited(_ATTRIBUTE, pair)


def log_record(event: Event, observed_unix_nano: int, attributes: list[bytes]) -> bytes:
    """The LogRecord message of `event` with its `attributes` fields already written, serialized."""
    parts: list[bytes] = []
    if event.time_unix_nano:
        parts.append(_TIME + _FIXED64(event.time_unix_nano))
    if event.severity_number:
        parts.append(_SEVERITY_NUMBER + varint(event.severity_number))
    if event.severity_text:
        parts.append(_delimited(_SEVERITY_TEXT, event.severity_text.encode()))
    parts.append(_delimited(_BODY, string_value(event.body)))
    parts += attributes
    if observed_unix_nano:
        parts.append(_OBSERVED + _FIXED64(observed_unix_nano))
    if event.event_name:
        parts.append(_delimited(_EVENT_NAME, event.event_name.encode()))
    return b"".join(parts)


def framed(tag: bytes, message: bytes) -> bytes:
    """A message as a length-delimited field of its parent."""
    return _delimited(tag, message)
