"""Remembered results of string rewrites: LibreChat repeats itself (messages, stack traces, file names)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

# At most SIZE strings of at most LENGTH characters are kept (twice, with their results): a few MB at worst.
SIZE: Final = 1024
LENGTH: Final = 1024


class Memo:
    """`rewrite(value)`, computed once per distinct short string; forgets everything when full."""

    __slots__ = ("_rewrite", "known")

    def __init__(self, rewrite: Callable[[str], str]) -> None:
        self._rewrite = rewrite
        # value -> result; a hot loop may look here first and call only on a miss.
        self.known: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        if len(value) > LENGTH:
            return self._rewrite(value)
        done = self.known.get(value)
        if done is None:
            if len(self.known) >= SIZE:
                self.known.clear()
            done = self.known[value] = self._rewrite(value)
        return done
