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

# Unicode local parts and domains occur (`李雷91@example.com`, `chloé@bücher.example`). A match starts only where
# a run of local-part characters starts: tried from inside the run too, a long run before an '@' is rescanned
# from each of its characters (quadratic), and a match from inside would be the tail of the same address anyway.
EMAIL: Final = re.compile(r"(?<![\w.+%'-])[\w.+%'-]+@[\w-]+(?:\.[\w-]+)+")


EMAIL_KEY: Final = "user.email"


def mask(address: str) -> str:
    """`chloé@bücher.example` -> `c***@bücher.example`: the domain stays useful, the person does not."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def hashed(address: str) -> str:
    """A stable pseudonym, so one user's records can still be grouped."""
    return "sha256:" + hashlib.sha256(address.lower().encode()).hexdigest()[:16]


_REWRITE: Final[dict[str, Callable[[str], str]]] = {"mask": mask, "hash": hashed, "drop": lambda _address: REDACTED}


class EmailPrivacy:
    """Callable processor applying the policy to `user.email` and to addresses inside any string."""

    __slots__ = ("_drop", "_rewrite", "text")

    def __init__(self, policy: EmailPolicy) -> None:
        self._drop = policy == "drop"
        rewrite = _REWRITE.get(policy)
        self._rewrite: Callable[[re.Match[str]], str] | None = (
            (lambda match: rewrite(match.group(0))) if rewrite is not None else None
        )
        self.text = Memo(self._text)  # `value` under the policy

    def _text(self, value: str) -> str:
        if self._rewrite is None or "@" not in value:
            return value
        return EMAIL.sub(self._rewrite, value)

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
