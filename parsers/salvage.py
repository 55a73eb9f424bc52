"""Read what can be read from a JSON line that is not valid JSON.

v0.7 applies its redaction regexes to the *serialized* line: `(Bearer )\\S+` runs over `"`, `,` and `}`
until the next space, so keys vanish and the line may stop being JSON (librechat-log-formats.md §2).
The `"key":"value"` pairs on either side of the damage are still intact.
"""

from __future__ import annotations

import re
from typing import Final

import orjson

from parsers.winston import CONTEXT_KEYS, Raw, iso_to_ns

_PAIR: Final = re.compile(
    r'"(level|message|name|stack|code|timestamp|status|'
    + "|".join(CONTEXT_KEYS)
    + r')":("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)'
)
_STACK_HEAD: Final = re.compile(r"[A-Za-z_$][\w$.]*: (.*)")


def salvage(text: str, default_level: str) -> Raw | None:
    """A `Raw` from the readable `"key":value` pairs, or None when not even a message or stack survived."""
    found: dict[str, object] = {}
    for match in _PAIR.finditer(text):
        key = match.group(1)
        if key in found:
            continue
        try:
            found[key] = orjson.loads(match.group(2))
        except orjson.JSONDecodeError:
            continue
    message = found.pop("message", None)
    stack = found.get("stack")
    if not isinstance(message, str):
        if not isinstance(stack, str):
            return None
        head = _STACK_HEAD.match(stack.partition("\n")[0])
        message = head.group(1) if head else stack.partition("\n")[0]
    level = found.pop("level", default_level)
    stamp = found.pop("timestamp", None)
    return Raw(
        level=level if isinstance(level, str) else default_level,
        message=message,
        time_ns=iso_to_ns(stamp) if isinstance(stamp, str) else None,
        fields=found,
        salvaged=True,
    )
