"""E-mail addresses under the privacy policy (events.md §5): keep, mask, hash or drop."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Final

from logtail.pipeline.memo import Memo
from logtail.pipeline.redact import REDACTED
from logtail.pipeline.settings import EmailPolicy
from parsers.event import Event

# Unicode local parts and domains occur (`李雷91@example.com`, `chloé@bücher.example`). An address is a whole run of
# local-part characters, an '@' and a dotted domain: `EMAIL` says it as one pattern, `rewrite_addresses` finds the
# same matches from each '@' (five times faster than `EMAIL.sub`, which tries the pattern at every character).
EMAIL: Final = re.compile(r"(?<![\w.+%'-])[\w.+%'-]+@[\w-]+(?:\.[\w-]+)+")
_LOCAL: Final = re.compile(r"[\w.+%'-]+")
_DOMAIN: Final = re.compile(r"[\w-]+(?:\.[\w-]+)+")
EMAIL_KEY: Final = "user.email"


def mask(address: str) -> str:
    """`chloé@bücher.example` -> `c***@bücher.example`: the domain stays useful, the person does not."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def hashed(address: str) -> str:
    """A stable pseudonym, so one user's records can still be grouped."""
    return "sha256:" + hashlib.sha256(address.lower().encode()).hexdigest()[:16]


_REWRITE: Final[dict[str, Callable[[str], str]]] = {"mask": mask, "hash": hashed, "drop": lambda _address: REDACTED}


def rewrite_addresses(value: str, rewrite: Callable[[str], str]) -> str:
    """`EMAIL.sub` with `rewrite(address)`. Reads each character a bounded number of times: the local part is
    matched backwards from its '@', never further back than the last '@' or address."""
    parts: list[str] = []
    done = 0  # end of the last address
    floor = 0  # where the local part before the next '@' may start at the earliest
    run_starts = True  # whether a run of local-part characters may start at `floor` (not right after a domain)
    at = value.find("@")
    while at != -1:
        local = _LOCAL.match(value[at - 1 : floor - 1 if floor else None : -1]) if at > floor else None
        domain = _DOMAIN.match(value, at + 1) if local is not None else None
        if local is not None and domain is not None and (run_starts or local.end() < at - floor):
            start = at - local.end()
            parts += (value[done:start], rewrite(value[start : domain.end()]))
            done = floor = domain.end()
            run_starts = False
        else:
            floor, run_starts = at + 1, True
        at = value.find("@", floor)
    if not parts:
        return value
    parts.append(value[done:])
    return "".join(parts)


class EmailPrivacy:
    """Callable processor applying the policy to `user.email` and to addresses inside any string."""

    __slots__ = ("_drop", "_rewrite", "text")

    def __init__(self, policy: EmailPolicy) -> None:
        self._drop = policy == "drop"
        self._rewrite = _REWRITE.get(policy)
        self.text = Memo(self._text)  # `value` under the policy

    def _text(self, value: str) -> str:
        if self._rewrite is None or "@" not in value:
            return value
        return rewrite_addresses(value, self._rewrite)

    def __call__(self, event: Event) -> Event:
        if self._rewrite is None:
            return event
        attrs = event.attributes
        if self._drop:
            attrs.pop(EMAIL_KEY, None)
        text = self.text
        if "@" in event.body:
            event.body = text(event.body)
        for key, value in attrs.items():
            if isinstance(value, str) and "@" in value:
                attrs[key] = text(value)
            elif isinstance(value, list) and value and isinstance(value[0], str):  # `{"to": ["a@b.example"]}`
                attrs[key] = [text(item) if isinstance(item, str) else item for item in value]
        return event
