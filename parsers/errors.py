"""Error records: exception attributes, and naming errors whose message lost its `[prefix]`.

LibreChat's newest logger writes `logger.error('[spendTokens]', err)` as `message = err.message`
(events.md, librechat-log-formats.md §2), so the call site is recognised from the error itself:
its name and the shape of its message.
"""

from __future__ import annotations

import re
from typing import Final

from parsers.event import Attributes
from parsers.fields import number, put
from parsers.winston import Raw

ERROR: Final = "librechat.error"
BALANCE_ERROR: Final = "librechat.balance.error"
SEARCH_ERROR: Final = "librechat.search.error"
AUTH_2FA: Final = "librechat.auth.2fa"
REGISTER: Final = "librechat.auth.register"

# A stack starts `Name: message` and its frames with `\n    at `. Found as
# `([A-Za-z_$][\w$.]*)(?:: ([\s\S]*?))?(?=\n\s+at |\Z)` would, without trying a lookahead at every character
# of the message (that regex was a third of an error record's parse).
_STACK_NAME: Final = re.compile(r"[A-Za-z_$][\w$.]*")
_FRAME: Final = re.compile(r"\n\s+at ")

# Unprefixed error messages -> (event name, error source). Checked in order; first hit wins.
_FINGERPRINTS: Final[tuple[tuple[re.Pattern[str], str, str], ...]] = (
    (
        re.compile(r"transactions\.\w+\(\)` buffering timed out|LibreChat\.balances |WriteConflict"),
        BALANCE_ERROR,
        "balance",
    ),
    (re.compile(r"^connect ECONNREFUSED \S+:27017$"), BALANCE_ERROR, "balance"),
    (re.compile(r"LibreChat\.users index: email"), REGISTER, "auth"),
    (
        re.compile(
            r"^(?:jwt (?:malformed|expired|must be provided)|invalid (?:signature|token)|Invalid encrypted secret)"
        ),
        AUTH_2FA,
        "auth",
    ),
    (re.compile(r"^Request to \S+ has failed"), SEARCH_ERROR, "search"),
)
# Error names that say who failed.
_NAME_RULES: Final[tuple[tuple[str, str, str], ...]] = (
    ("MeiliSearch", SEARCH_ERROR, "search"),
    ("JsonWebToken", AUTH_2FA, "auth"),
    ("TokenExpired", AUTH_2FA, "auth"),
)
_PROVIDER_NAMES: Final = frozenset(
    {
        "APIError",
        "BadRequestError",
        "AuthenticationError",
        "PermissionDeniedError",
        "NotFoundError",
        "RateLimitError",
        "InternalServerError",
        "APIConnectionError",
        "APIConnectionTimeoutError",
        "GoogleGenerativeAIFetchError",
        "GoogleGenerativeAIResponseError",
    }
)
_UNCAUGHT_MESSAGES: Final = re.compile(
    r"^(?:stream ended without producing|\[GoogleGenerativeAI Error\]: Failed to parse stream"
    r"|This operation was aborted|Cannot read properties of null \(reading 'tool_calls'\))"
)


def exception_parts(raw: Raw) -> tuple[str | None, str, str | None]:
    """(exception.type, exception.message, exception.stacktrace) as far as the record tells."""
    stack = raw.fields.get("stack")
    name = raw.fields.get("name")
    etype = name if isinstance(name, str) and name else None
    message = raw.message
    if isinstance(stack, str) and stack:
        head = _stack_head(stack)
        if head:
            etype = etype or head[0]
            if head[1] is not None:
                message = head[1]
        return etype, message, stack
    frames = message.find("\n    at ")
    if frames > 0:  # v0.7 redaction can swallow `","stack":"` and leave the frames in the message
        return etype, message[:frames], message
    return etype, message, None


def _stack_head(stack: str) -> tuple[str, str | None] | None:
    """(name, message or None) of a stack's head line, None when it does not start with an error name."""
    name = _STACK_NAME.match(stack)
    if name is None:
        return None
    end = name.end()
    if stack.startswith(": ", end):
        frame = _FRAME.search(stack, end + 2)
        return name.group(), stack[end + 2 : frame.start() if frame else len(stack)]
    if end == len(stack) or _FRAME.match(stack, end):
        return name.group(), None
    return None  # the name is followed by something else (a shorter name would be followed by a name character)


def put_exception(raw: Raw, attrs: Attributes, source: str) -> None:
    etype, message, stack = exception_parts(raw)
    put(attrs, "exception.type", etype)
    put(attrs, "exception.message", message)
    put(attrs, "exception.stacktrace", stack)
    attrs["librechat.error.source"] = source
    code = raw.fields.get("code")
    if isinstance(code, (str, int)) and not isinstance(code, bool):
        attrs["error.type"] = str(code)
    status = number(raw.fields.get("status") or raw.fields.get("httpStatus"))
    if isinstance(status, int):
        attrs["http.response.status_code"] = status


def classify_unprefixed(raw: Raw) -> tuple[str, str]:
    """(event name, error source) for an error/warn record no prefix rule recognised."""
    message = raw.message.lstrip()
    for pattern, event, source in _FINGERPRINTS:
        if pattern.search(message):
            return event, source
    name = raw.fields.get("name")
    if isinstance(name, str):
        for prefix, event, source in _NAME_RULES:
            if name.startswith(prefix):
                return event, source
    stack = raw.fields.get("stack")
    if _UNCAUGHT_MESSAGES.match(message):
        return ERROR, "uncaught"
    if name in _PROVIDER_NAMES or (isinstance(stack, str) and "Client.chatCompletion" in stack):
        return ERROR, "provider"
    return ERROR, "other"
