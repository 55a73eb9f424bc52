"""Decode the two Winston record shapes: a JSON line, and a debug-file text record.

Both give a `Raw`: level, message, timestamp (if written), the metadata fields, and the request
context LibreChat's newest logger appends. Nothing here knows what a message means.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

import orjson

from parsers.debugblock import parse_block

Fields = dict[str, object]

_HEADER: Final = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (error|warn|info|http|verbose|debug|activity|silly)(?:: |\r?\n|$)"
)
_ISO: Final = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?Z?")
_MINUTE: Final = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")
# Keys of the request context the newest logger appends to non-debug headers.
CONTEXT_KEYS: Final = frozenset({"userId", "requestId", "request_id", "request_method", "request_path", "tenantId"})


@dataclass(slots=True)
class Raw:
    """A record decoded into Winston's own terms; `fields` is its metadata, request context included."""

    level: str
    message: str
    time_ns: int | None
    fields: Fields = field(default_factory=dict)
    salvaged: bool = False


@lru_cache(maxsize=4096)
def _day_ns(day: str) -> int:
    return calendar.timegm((int(day[:4]), int(day[5:7]), int(day[8:10]), 0, 0, 0)) * 1_000_000_000


@lru_cache(maxsize=1024)
def _minute_ns(prefix: str) -> int | None:
    """`YYYY-MM-DDTHH:MM` as Unix nanoseconds (None if it is not one): the part consecutive records share."""
    if not _MINUTE.fullmatch(prefix):
        return None
    try:
        return _day_ns(prefix[:10]) + (int(prefix[11:13]) * 60 + int(prefix[14:16])) * 60_000_000_000
    except ValueError:
        return None


def iso_to_ns(stamp: str) -> int | None:
    """`2025-11-24T23:25:48.797Z` (or `YYYY-MM-DD HH:mm:ss`) as Unix nanoseconds; None if it is not one."""
    if len(stamp) == 24 and stamp[16] == ":" and stamp[19] == "." and stamp[23] == "Z":
        # Winston's own shape: the minute is looked up, only seconds and milliseconds are read.
        rest = stamp[17:19] + stamp[20:23]
        if rest.isascii() and rest.isdigit():
            minute = _minute_ns(stamp[:16])
            if minute is not None:
                return minute + int(rest[:2]) * 1_000_000_000 + int(rest[2:]) * 1_000_000
    if not _ISO.fullmatch(stamp):
        return None
    try:
        base = _day_ns(stamp[:10])
        secs = int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])
    except ValueError:
        return None
    frac = stamp[20:].rstrip("Z")
    nanos = int(frac.ljust(9, "0")) if frac else 0
    return base + secs * 1_000_000_000 + nanos


def decode_json(text: str) -> Fields | None:
    """The JSON object of a line, or None when the line is not one."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def raw_from_json(obj: Fields, default_level: str) -> Raw:
    """error / meiliSync / login-logs line: `{"level", "message", "timestamp"?, ...metadata}`."""
    level = obj.pop("level", default_level)
    message = obj.pop("message", "")
    if "0" in obj and isinstance(message, str):
        message = _unspread(obj, message)
    stamp = obj.pop("timestamp", None)
    time_ns = iso_to_ns(stamp) if isinstance(stamp, str) else None
    if time_ns is None and stamp is not None:
        obj["timestamp"] = stamp  # keep what we could not read
    return Raw(
        level=level if isinstance(level, str) else str(level),
        message=message if isinstance(message, str) else orjson.dumps(message).decode(),
        time_ns=time_ns,
        fields=obj,
    )


def _unspread(obj: Fields, message: str) -> str:
    """`logger.debug(msg, 'a string')` on a JSON transport: winston's splat spreads the string into keys `"0"`,
    `"1"`… of one character each. Put it back after the message, as the debug file's header shows it."""
    chars: list[str] = []
    while isinstance(char := obj.get(str(len(chars))), str) and len(char) == 1:
        chars.append(char)
    for i in range(len(chars)):
        del obj[str(i)]
    return f"{message} {''.join(chars)}" if chars else message


def match_header(text: str) -> re.Match[str] | None:
    return _HEADER.match(text)


def raw_from_debug(text: str, header: re.Match[str]) -> Raw:
    """debug-file record: header, message (may span lines), then an optional metadata block or array."""
    level = header.group(2)
    rest = text[header.end() :].rstrip("\r\n")
    if level == "debug":
        rest, fields = _split_metadata(rest)
        if not fields and rest.endswith("}"):  # v0.8 appends the request context to block-less headers too
            rest, fields = split_context(rest)
    else:
        rest, fields = split_context(rest)
    return Raw(level=level, message=rest, time_ns=iso_to_ns(header.group(1)), fields=fields)


def _split_metadata(rest: str) -> tuple[str, Fields]:
    """`msg\\n{\\n  key: value,\\n}` or `msg\\n[json array]`: the block rendered from the first splat object."""
    if rest.endswith("\n}"):
        # Block lines are all indented and strings are JSON-quoted, so the last "\n{\n" opens the block.
        start = rest.rfind("\n{\n")
        if start >= 0:
            return rest[:start], parse_block(rest[start + 3 : -2])
        if rest.endswith("\n{\n}"):
            return rest[:-4], {}
    elif rest.endswith("]"):
        cut = rest.rfind("\n[")
        if cut >= 0:
            try:
                items = orjson.loads(rest[cut + 1 :])
            except orjson.JSONDecodeError:
                return rest, {}
            return rest[:cut], {"items": items}
    return rest, {}


def split_context(rest: str) -> tuple[str, Fields]:
    """Newest LibreChat appends ` {"userId":…,"requestId":…}` to non-debug headers."""
    if not rest.endswith("}"):
        return rest, {}
    cut = rest.rfind(' {"')
    if cut < 0:
        return rest, {}
    obj = decode_json(rest[cut + 1 :])
    if not obj or not CONTEXT_KEYS.issuperset(obj):
        return rest, {}
    return rest[:cut], obj
