"""Balance records: `[Balance.check]`, auto-refill, `[updateBalance]` and transaction failures."""

from __future__ import annotations

import re
from typing import Final

from parsers.errors import BALANCE_ERROR, put_exception
from parsers.event import Attributes
from parsers.fields import put, put_number, put_request
from parsers.winston import Raw

CHECK: Final = "librechat.balance.check"
REFILL: Final = "librechat.balance.refill"

_USER: Final = re.compile(r"for user (\w+)")
_ATTEMPT: Final = re.compile(r"attempt (\d+)|after (\d+) attempts")


def check(raw: Raw, attrs: Attributes) -> str:
    """Initial state (`{user, model, endpoint, tokenType, amount, balance, multiplier}`), token cost, no record."""
    fields = raw.fields
    put_request(attrs, fields)
    message = raw.message
    if "No balance record" in message:
        step = "no_record"
    elif "tokenCost" in fields and "model" not in fields:
        step = "token_cost"
    else:
        step = "initial_state"
    attrs["librechat.balance.step"] = step
    put(attrs, "gen_ai.request.model", fields.get("model"))
    put(attrs, "librechat.endpoint", fields.get("endpoint"))
    put(attrs, "librechat.token.type", fields.get("tokenType"))
    put(attrs, "librechat.token.value_key", fields.get("valueKey"))
    put_number(attrs, "librechat.token.amount", fields.get("amount"))
    put_number(attrs, "librechat.balance", fields.get("balance"))
    put_number(attrs, "librechat.multiplier", fields.get("multiplier"))
    put_number(attrs, "librechat.token.cost", fields.get("tokenCost"))
    return CHECK


def refill(raw: Raw, attrs: Attributes) -> str:
    """`Auto-refill performed` + `{rate, user, balance}`."""
    fields = raw.fields
    put_request(attrs, fields)
    put_number(attrs, "librechat.balance", fields.get("balance"))
    put_number(attrs, "librechat.balance.refill_rate", fields.get("rate"))
    return REFILL


def error(raw: Raw, attrs: Attributes) -> str:
    """A failed balance or transaction operation; `[updateBalance]` names the user and the attempt."""
    put_request(attrs, raw.fields)
    put_exception(raw, attrs, "balance")
    message = raw.message
    if "user.id" not in attrs:
        user = _USER.search(message)
        if user:
            attrs["user.id"] = user.group(1)
    attempt = _ATTEMPT.search(message)
    if attempt:
        attrs["librechat.balance.attempt"] = int(attempt.group(1) or attempt.group(2))
    return BALANCE_ERROR
