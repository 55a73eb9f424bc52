"""The dead-letter file: records the backend refused, one JSON line each, bounded in size.

A backend that refuses everything (a wrong profile, a schema it rejects) would otherwise make the file grow as
fast as the logs. When the next lines would take the file past its cap, it becomes its one predecessor
(`<name>.1`, replacing the previous predecessor, whose dead letters are dropped: logged once and counted).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from logtail.export.transport import Answer
from logtail.service.selfmetrics import SelfMetrics
from parsers.event import Event

log = logging.getLogger(__name__)

_COUNT_CHUNK: Final = 1 << 20


def predecessor(path: Path) -> Path:
    """Where the dead-letter file goes when it is full."""
    return path.with_name(path.name + ".1")


class DeadLetters:
    """Refused records in a file only the service user can read (records hold user data), at most `max_bytes`
    in it and as much again in its predecessor."""

    def __init__(self, path: Path, self_metrics: SelfMetrics, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._self = self_metrics

    def write(self, events: Sequence[Event], answer: Answer) -> None:
        when = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        reason = answer.message or "refused by the backend"
        # ASCII-escaped stdlib JSON: a record refused for odd content (lone surrogates) must still be written.
        lines = [
            json.dumps(
                {**event.to_json_dict(), "reason": reason, "status": answer.status, "dead_lettered_at": when},
                default=str,
            ).encode()
            + b"\n"
            for event in events
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for chunk in self._chunks(lines):
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, chunk)
            finally:
                os.close(fd)

    def _chunks(self, lines: list[bytes]) -> Iterator[bytes]:
        """`lines` joined into appends that fit the cap, rotating the file before each one that would not. A
        single line longer than the cap is written alone into an empty file: it is kept, never cut."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        chunk: list[bytes] = []
        for line in lines:
            if size + len(line) > self.max_bytes and size > 0:
                if chunk:
                    yield b"".join(chunk)
                    chunk = []
                self._rotate()
                size = 0
            chunk.append(line)
            size += len(line)
        if chunk:
            yield b"".join(chunk)

    def _rotate(self) -> None:
        older = predecessor(self.path)
        dropped = _count_lines(older)
        os.replace(self.path, older)
        if dropped:
            self._self.drop_dead_letters(dropped)
            log.warning(
                "dead-letter file %s reached its cap of %d bytes: moved to %s, dropping the %d older dead letters "
                "that file held",
                self.path,
                self.max_bytes,
                older,
                dropped,
            )
        else:
            log.warning(
                "dead-letter file %s reached its cap of %d bytes: moved to %s", self.path, self.max_bytes, older
            )


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as stream:
            return sum(block.count(b"\n") for block in iter(lambda: stream.read(_COUNT_CHUNK), b""))
    except FileNotFoundError:
        return 0
