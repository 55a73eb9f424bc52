"""The contract between the source (which owns checkpoints) and the exporter (which owns acks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from parsers.event import Event


class ShutdownInterrupted(Exception):
    """`ship` gave up because the service is stopping; nothing of the batch may be committed."""


class Sink(Protocol):
    def ship(self, events: Sequence[Event]) -> None:
        """Return only once every event is acknowledged by the backend or written to the dead-letter
        file. Retries retryable failures itself; raises ShutdownInterrupted when asked to stop first.
        The caller commits checkpoints up to the `end` of these events after it returns."""
        ...

    def close(self) -> None:
        """Export the final metric totals and release connections."""
        ...
