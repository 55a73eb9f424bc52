"""Remembered results of functions of strings: LibreChat repeats itself (messages, stack traces, file names, users)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Generic, TypeVar

# By default at most SIZE strings of at most LENGTH characters are kept, with their results: a few MB at worst.
SIZE: Final = 1024
LENGTH: Final = 1024

T = TypeVar("T")


class Memo(Generic[T]):
    """`rewrite(value)`, computed once per distinct short string; forgets everything when `size` are kept."""

    __slots__ = ("_rewrite", "_size", "known")

    def __init__(self, rewrite: Callable[[str], T], size: int = SIZE) -> None:
        self._rewrite = rewrite
        self._size = size
        # value -> result; a hot loop may look here first and call only on a miss.
        self.known: dict[str, T] = {}

    def __call__(self, value: str) -> T:
        if len(value) > LENGTH:
            return self._rewrite(value)
        done = self.known.get(value)
        if done is None:
            if len(self.known) >= self._size:
                self.known.clear()
            done = self.known[value] = self._rewrite(value)
        return done
