"""Moderation traces: `[BAN]` lines, `token_balance` violations, aborted requests."""

from __future__ import annotations

import re
from typing import Final

import orjson

from parsers.errors import put_exception
from parsers.event import Attributes
from parsers.fields import put, put_number, put_request
from parsers.winston import Raw

BAN: Final = "librechat.ban"
VIOLATION: Final = "librechat.violation"
ABORTED: Final = "librechat.request.aborted"

_BAN: Final = re.compile(r"Banning user (\S+) (?:@ (\S+) )?for ([\d.]+) minutes")
_ABORT: Final = re.compile(r"ID: (\S+) \| (.*?) \| Aborted request: ?(.*)", re.S)
_ABORT_KEY: Final = re.compile(r'"abortKey":"([^"]*)')
# The violation payload LibreChat throws as an Error message: `{"type":"token_balance",...}`.
_PAYLOAD: Final = re.compile(r'\{"type":"[^"]+"[^{}]*(?:\[[^\]]*\][^{}]*)*\}')
# How the debug file ends a header it cut short.
_CUT: Final = "... [truncated]"


def ban(raw: Raw, attrs: Attributes) -> str:
    """`[BAN] Banning user <id> @ <ip> for <minutes> minutes`."""
    put_request(attrs, raw.fields)
    found = _BAN.search(raw.message)
    if found:
        attrs["user.id"] = found.group(1)
        if found.group(2):
            attrs["client.address"] = found.group(2)
        put_number(attrs, "librechat.ban.duration_minutes", found.group(3))
    return BAN


def violation_payload(message: str) -> dict[str, object] | None:
    """The `{"type": ...}` object inside an error message, if there is one."""
    found = _PAYLOAD.search(message)
    if found:
        text = found.group(0)
    elif message.endswith(_CUT):
        text = _cut_payload(message)
    else:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    # Provider error bodies look alike (`{"type":"error","error":{"type":"overloaded_error",…}}`).
    if not isinstance(kind, str) or kind.endswith("error") or "error" in value:
        return None
    return value


def _cut_payload(message: str) -> str:
    """A payload the debug header cut at 150 characters, up to its last complete member, closed again."""
    start = message.find('{"type":"')
    body = message[start : -len(_CUT)] if start >= 0 else ""
    return body[: body.rfind(",")] + "}" if "," in body else ""


def violation(raw: Raw, attrs: Attributes, payload: dict[str, object]) -> str:
    put_request(attrs, raw.fields)
    attrs["librechat.violation.type"] = str(payload["type"])
    put_number(attrs, "librechat.balance", payload.get("balance"))
    put_number(attrs, "librechat.token.cost", payload.get("tokenCost"))
    put_number(attrs, "librechat.violation.prompt_tokens", payload.get("promptTokens"))
    put_exception(raw, attrs, "stream")
    return VIOLATION


def aborted(raw: Raw, attrs: Attributes) -> str:
    """`[abortMessage] ID: <user id> | <email> | Aborted request: {"abortKey":"…"}`."""
    put_request(attrs, raw.fields)
    found = _ABORT.search(raw.message)
    if found:
        attrs["user.id"] = found.group(1)
        put(attrs, "user.email", found.group(2))
        key = _ABORT_KEY.search(found.group(3))
        if key:
            attrs["librechat.abort_key"] = key.group(1)
    return ABORTED
