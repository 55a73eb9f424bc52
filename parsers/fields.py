"""Helpers that move Winston metadata into OTel attributes."""

from __future__ import annotations

from typing import Final

import orjson

from parsers.event import Attributes, AttrValue
from parsers.winston import Fields

_INT64: Final = 1 << 63

# Metadata every extractor reads itself; the rest of a record's metadata is kept as `librechat.meta.<key>`.
CONSUMED: Final = frozenset(
    {
        "user",
        "userId",
        "requestId",
        "request_id",
        "request_method",
        "request_path",
        "tenantId",
        "stack",
        "name",
        "code",
        "status",
        "promptTokens",
        "promptTokens.input",
        "promptTokens.write",
        "promptTokens.read",
        "completionTokens",
        "prompt",
        "promptRate",
        "completion",
        "completionRate",
        "balance",
        "model",
        "endpoint",
        "valueKey",
        "tokenType",
        "amount",
        "multiplier",
        "tokenCost",
        "rate",
        "indexMap",
        "mongoMap",
    }
)


def to_attr(value: object) -> AttrValue | None:
    """An OTLP-friendly value: scalars as they are, string lists kept, anything else as JSON text."""
    if isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else str(value)
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def put(attrs: Attributes, key: str, value: object) -> None:
    """Set `key` unless the value is missing or empty."""
    if value is None or value == "":
        return
    converted = to_attr(value)
    if converted is not None:
        attrs[key] = converted


def number(value: object) -> int | float | None:
    """A numeric metadata value (bool excluded), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return None
    return None


def put_number(attrs: Attributes, key: str, value: object) -> None:
    num = number(value)
    if num is not None:
        attrs[key] = num


def put_request(attrs: Attributes, fields: Fields) -> None:
    """User and request context (v0.8 merges it into metadata; older releases may carry `user`)."""
    user = fields.get("userId") or fields.get("user")
    if isinstance(user, str):
        attrs["user.id"] = user
    request = fields.get("requestId") or fields.get("request_id")
    if isinstance(request, str):
        attrs["librechat.request.id"] = request
    method = fields.get("request_method")
    if isinstance(method, str):
        attrs["http.request.method"] = method
    path = fields.get("request_path")
    if isinstance(path, str):
        attrs["url.path"] = path
    tenant = fields.get("tenantId")
    if isinstance(tenant, str):
        attrs["librechat.tenant.id"] = tenant


def put_leftovers(attrs: Attributes, fields: Fields) -> None:
    """Metadata no extractor knows, kept so nothing is dropped (redaction sees these keys too)."""
    for key, value in fields.items():
        if key not in CONSUMED:
            put(attrs, "librechat.meta." + key, value)
