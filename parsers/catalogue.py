"""Which event a record is: message prefix -> extractor (events.md §2).

Dispatch is two dict lookups on the message's `[tag]` or first word, then a few `startswith`/`in`
checks inside the chosen extractor, so a record never runs more than a handful of regexes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from parsers import auth, balance, moderation, search, tokens
from parsers.errors import BALANCE_ERROR, ERROR, classify_unprefixed, put_exception
from parsers.event import Attributes
from parsers.fields import put_request
from parsers.winston import Raw

LOG: Final = "librechat.log"
LIFECYCLE: Final = "librechat.server.lifecycle"

Extractor = Callable[[Raw, Attributes], str]

_PORT: Final = re.compile(r"port (\d+)")
_CONVERSATION: Final = re.compile(r"for conversation (\S+)")


def generic(raw: Raw, attrs: Attributes) -> str:
    put_request(attrs, raw.fields)
    return LOG


def _error(source: str) -> Extractor:
    def extract(raw: Raw, attrs: Attributes) -> str:
        put_request(attrs, raw.fields)
        put_exception(raw, attrs, source)
        return ERROR

    return extract


_middleware_error = _error("middleware")
_uncaught_error = _error("uncaught")
_provider_error = _error("provider")
_stream_error = _error("stream")


def unprefixed(raw: Raw, attrs: Attributes) -> str:
    """Error records whose message carries no tag (the newest logger writes `err.message` only)."""
    if raw.message.startswith("{"):
        payload = moderation.violation_payload(raw.message)
        if payload is not None:
            return moderation.violation(raw, attrs, payload)
    event, source = classify_unprefixed(raw)
    put_request(attrs, raw.fields)
    if event == BALANCE_ERROR:
        return balance.error(raw, attrs)
    put_exception(raw, attrs, source)
    return event


def _spend(raw: Raw, attrs: Attributes) -> str:
    message = raw.message
    if "conversationId:" in message or "Token usage" in message:
        return tokens.usage(raw, attrs)
    if "Transaction data record" in message:
        return tokens.transaction(raw, attrs)
    if "No transactions incurred" in message:
        return tokens.no_transaction(raw, attrs)
    if raw.level == "error":
        return balance.error(raw, attrs)
    return generic(raw, attrs)


def _balance_check(raw: Raw, attrs: Attributes) -> str:
    message = raw.message
    if "Auto-refill performed" in message:
        return balance.refill(raw, attrs)
    if raw.level == "error" or "Failed to record" in message:
        return balance.error(raw, attrs)
    return balance.check(raw, attrs)


def _abort_message(raw: Raw, attrs: Attributes) -> str:
    if "Aborted request" in raw.message:
        return moderation.aborted(raw, attrs)
    return _stream_error(raw, attrs)


def _handle_abort_error(raw: Raw, attrs: Attributes) -> str:
    payload = moderation.violation_payload(raw.message)
    if payload is not None:
        return moderation.violation(raw, attrs, payload)
    return _stream_error(raw, attrs)


def _index_sync(raw: Raw, attrs: Attributes) -> str:
    if raw.level == "error":
        return search.error(raw, attrs)
    return search.sync(raw, attrs)


def _meili(raw: Raw, attrs: Attributes) -> str:
    if raw.level == "error" or "not found in MeiliSearch" in raw.message:
        return search.error(raw, attrs)
    return search.sync(raw, attrs)


def _lifecycle(event: str) -> Extractor:
    def extract(raw: Raw, attrs: Attributes) -> str:
        attrs["librechat.server.event"] = event
        port = _PORT.search(raw.message)
        if port:
            attrs["server.port"] = int(port.group(1))
        return LIFECYCLE

    return extract


def _google_censor(raw: Raw, attrs: Attributes) -> str:
    found = _CONVERSATION.search(raw.message)
    if found:
        attrs["gen_ai.conversation.id"] = found.group(1)
    return _stream_error(raw, attrs)


_TWOFA_TAGS: Final = (
    "enable2FA",
    "verify2FA",
    "confirm2FA",
    "disable2FA",
    "regenerateBackupCodes",
    "verify2FAWithTempToken",
)
_MEILI_TAGS: Final = (
    "syncWithMeili",
    "cleanupMeiliIndex",
    "mongoMeili",
    "addObjectToMeili",
    "updateObjectToMeili",
    "deleteObjectFromMeili",
    "MeiliMongooseModel.deleteMany",
    "MeiliMongooseModel.findOneAndUpdate",
)

# `[tag] ...` messages.
TAGS: Final[dict[str, Extractor]] = {
    "spendTokens": _spend,
    "spendStructuredTokens": _spend,
    "Balance.check": _balance_check,
    "updateBalance": balance.error,
    "BAN": moderation.ban,
    "Login": auth.login,
    "registerUser": auth.register,
    "requestPasswordReset": auth.password_reset,
    "resetPassword": auth.password_reset,
    "abortMessage": _abort_message,
    "handleAbortError": _handle_abort_error,
    "OpenAIClient": _provider_error,
    "OpenAIClient.chatCompletion": _provider_error,
    "indexSync": _index_sync,
    **dict.fromkeys(_TWOFA_TAGS, auth.twofa),
    **dict.fromkeys(_MEILI_TAGS, _meili),
}

# Untagged messages, by first word: (message prefix, extractor) checked in order.
WORDS: Final[dict[str, tuple[tuple[str, Extractor], ...]]] = {
    "Connected": (("Connected to MongoDB", _lifecycle("mongo_connected")),),
    "Server": (("Server listening", _lifecycle("listening")),),
    "Passport": (("Passport Local Strategy", auth.login_detail),),
    "Route:": (("Route: register", auth.register),),
    "Register": (("Register User", auth.register),),
    "Duplicate": (("Duplicate key error", _middleware_error),),
    "Validation": (("Validation error", _middleware_error),),
    "ErrorController": (("ErrorController", _middleware_error),),
    "Error": (
        ("Error in checkBan", _middleware_error),
        ("Error querying transactions", balance.error),
    ),
    "There": (("There was an uncaught", _uncaught_error), ("There was an uncatchable", _uncaught_error)),
    "Meilisearch": (("Meilisearch error", _uncaught_error),),
    "An": (("An Uncaught", _uncaught_error), ("An error occurred in the agents system", _uncaught_error)),
    "`GoogleGenerativeAI`": (("`GoogleGenerativeAI` errors cannot be caught", _uncaught_error),),
    "AI": (("AI Response error for conversation", _google_censor),),
    "MongoDB": (("MongoDB transactions not supported", balance.error),),
}


def extractor_for(raw: Raw, family: str) -> Extractor:
    """The extractor for a decoded record."""
    message = raw.message.lstrip()
    if message.startswith("["):
        end = message.find("]")
        if end > 0:
            found = TAGS.get(message[1:end])
            if found is not None:
                return found
            if message[1:end].endswith("Client") or "Client." in message[1:end]:
                return _provider_error
    else:
        rules = WORDS.get(message.partition(" ")[0])
        if rules:
            for prefix, extract in rules:
                if message.startswith(prefix):
                    return extract
    if family == "meili":
        return _meili
    if raw.level == "error":
        return unprefixed
    return generic
