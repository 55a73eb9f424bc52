"""Token spending: `[spendTokens]` / `[spendStructuredTokens]` usage and transaction records."""

from __future__ import annotations

import re
from typing import Final

from parsers.event import Attributes
from parsers.fields import number, put_number, put_request
from parsers.winston import Raw

USAGE: Final = "librechat.token.usage"
TRANSACTION: Final = "librechat.token.transaction"
NO_TRANSACTION: Final = "librechat.token.no_transaction"
_SPLIT: Final = ("input", "write", "read")

# The header may be cut at 150 characters (`... [truncated]`), taking `| Token usage:` with it.
_USAGE: Final = re.compile(
    r"conversationId: ([^\s|]*)(?: \| Context: (.*?))?(?: \| Token usage:.*|\.\.\. \[truncated\])?$", re.S
)


def usage(raw: Raw, attrs: Attributes) -> str:
    """`conversationId: <id> | Context: <ctx> | Token usage:` + `{promptTokens, completionTokens}`.

    Structured usage splits the prompt into `input` (fresh), `write` (cache creation) and `read` (cache hits).
    """
    found = _USAGE.search(raw.message)
    if found:
        if found.group(1):
            attrs["gen_ai.conversation.id"] = found.group(1)
        if found.group(2):
            attrs["librechat.token.context"] = found.group(2)
    fields = raw.fields
    prompt = fields.get("promptTokens")
    # A JSON line (error file, CONSOLE_JSON) nests the split; the debug file flattens it to `promptTokens.input`.
    split = prompt if isinstance(prompt, dict) else {part: fields.get("promptTokens." + part) for part in _SPLIT}
    fresh = split.get("input") if prompt is None or split is prompt else prompt
    put_number(attrs, "gen_ai.usage.input_tokens", fresh)
    put_number(attrs, "gen_ai.usage.output_tokens", fields.get("completionTokens"))
    put_number(attrs, "gen_ai.usage.cache_creation.input_tokens", split.get("write"))
    put_number(attrs, "gen_ai.usage.cache_read.input_tokens", split.get("read"))
    put_request(attrs, fields)
    return USAGE


def transaction(raw: Raw, attrs: Attributes) -> str:
    """`Transaction data record against balance:` + `{user, prompt, promptRate, completion, completionRate, balance}`.

    `prompt`/`completion` are the signed credit amounts (negative when spent); their sum is `librechat.credits`.
    """
    fields = raw.fields
    put_request(attrs, fields)
    total: int | float = 0  # stays an int when both amounts are (mypyc would make a float a double)
    seen = False
    for key, attr in (("prompt", "librechat.token.prompt"), ("completion", "librechat.token.completion")):
        value = number(fields.get(key))
        if value is not None:
            attrs[attr] = value
            total += value
            seen = True
    if seen:
        attrs["librechat.credits"] = total
    put_number(attrs, "librechat.token.prompt_rate", fields.get("promptRate"))
    put_number(attrs, "librechat.token.completion_rate", fields.get("completionRate"))
    put_number(attrs, "librechat.balance", fields.get("balance"))
    return TRANSACTION


def no_transaction(raw: Raw, attrs: Attributes) -> str:
    put_request(attrs, raw.fields)
    return NO_TRANSACTION
