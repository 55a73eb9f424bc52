"""The typed event every record becomes (events.md §1 to §3).

A plain slotted dataclass rather than a pydantic model: millions of these are built during a replay,
and every field is filled by our own parsers, so validation would only cost time.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Final

# OTLP AnyValue subset we emit. Lists hold scalars only.
Scalar = str | int | float | bool
AttrValue = Scalar | list[str] | list[int] | list[float]
Attributes = dict[str, AttrValue]

# Winston level -> OTel severity number (events.md §3).
SEVERITY: Final[dict[str, int]] = {
    "error": 17,
    "warn": 13,
    "info": 9,
    "http": 7,
    "verbose": 6,
    "debug": 5,
    "activity": 4,
    "silly": 1,
}

FAMILIES: Final = ("error", "debug", "meili", "login")


def severity_number(level: str) -> int:
    return SEVERITY.get(level, 0)


@dataclass(slots=True)
class Event:
    """One LibreChat record, typed.

    `start`/`end` are byte offsets of the record in the decompressed file: the tailer commits
    `end` once the event is acknowledged. `observed_unix_nano` is a container runtime's time for the record
    (0: none; the exporter then uses the time it reads it).
    """

    event_name: str
    time_unix_nano: int
    severity_text: str
    severity_number: int
    body: str
    attributes: Attributes
    family: str
    file: str
    line: int
    start: int
    end: int
    observed_unix_nano: int = 0  # when a container runtime received the line; 0: when logtail reads it
    # The OTLP LogRecord encoded ahead by a parse worker, with how many attributes it holds (export fills it in;
    # parsers leave it None). Attributes added later are encoded when the batch is framed.
    wire: tuple[bytes, int] | None = field(default=None, compare=False, repr=False)

    def to_json_dict(self) -> dict[str, object]:
        """The `logtail parse` line (events.md §6)."""
        return {
            "time": iso_from_nanos(self.time_unix_nano),
            "severity_text": self.severity_text,
            "severity_number": self.severity_number,
            "event_name": self.event_name,
            "body": self.body,
            "attributes": self.attributes,
            "file": self.file,
            "line": self.line,
        }


def iso_from_nanos(ns: int) -> str:
    """UTC ISO-8601 with milliseconds, the shape Winston writes."""
    seconds, rem = divmod(ns, 1_000_000_000)
    stamp = _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{rem // 1_000_000:03d}Z"
