"""Read the `{ key: value, ... }` block LibreChat's `debugTraverse` writes under debug records.

Syntax (api/config/parsers.js, packages/data-schemas/src/config/parsers.ts):
  `  key: "json string",`      strings JSON-quoted, cut at 100 chars + `... [truncated]`
  `  key: 12.5,`               numbers, booleans, `undefined`, `null` written bare
  `    parent.key: 3,`         nested leaves carry only their immediate parent's key
  `  // 2 item(s)`             comment line before an array
  `  items: ["a","b"]`         arrays as one JSON list of condensed items (no trailing comma)
  `  fn: function,`            functions
Values become real Python values; `undefined` is dropped, anything unreadable stays a string.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

import orjson

_NUMBER: Final = re.compile(r"-?(?:\d+\.?\d*(?:e[+-]?\d+)?|\.\d+)")
_BARE: Final[dict[str, object]] = {"null": None, "true": True, "false": False}


def parse_value(text: str) -> object:
    """One rendered leaf value."""
    if text[:1] == "[":  # a list: a fresh one each time, since the caller may change it
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
    return _scalar(text)


@lru_cache(maxsize=4096)
def _scalar(text: str) -> object:
    """A string, number, boolean or null, remembered: the same values come back record after record."""
    if not text:
        return ""
    first = text[0]
    if first == '"':
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
    if first == "-" or first.isdigit():
        if _NUMBER.fullmatch(text):
            if "." in text or "e" in text:
                return float(text)
            return int(text)
        return text
    if text in _BARE:
        return _BARE[text]
    return text


def parse_block(block: str) -> dict[str, object]:
    """The block's lines (without the braces) as a flat dict keyed like the file (`promptTokens.input`)."""
    out: dict[str, object] = {}
    for line in block.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("//") or stripped == "... [truncated]":
            continue
        key, sep, value = stripped.partition(": ")
        if not sep:
            continue
        if value.endswith(","):
            value = value[:-1]
        if value == "undefined":
            continue
        out[key] = parse_value(value)
    return out
