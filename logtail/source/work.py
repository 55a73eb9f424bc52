"""What turns a batch of one file's records into events: parse, scrub, and encode each LogRecord ahead.

The same work runs in the tailer's readers, in place, and in `parse_workers`' processes.
"""

from __future__ import annotations

import contextlib
import time

from logtail.export.encode import EncodeRecord
from logtail.pipeline import TWIN, Scrub
from parsers import FileContext, parse_record
from parsers.event import Event
from parsers.records import Record


class Work:
    """Parses records; scrubs the events (if given a `Scrub`) and encodes their LogRecords (if given an encoder).

    Twins are not encoded: unless the pipeline makes them the only copy, they are not shipped."""

    __slots__ = ("encode", "scrub")

    def __init__(self, scrub: Scrub | None = None, encode: EncodeRecord | None = None) -> None:
        self.scrub = scrub
        self.encode = encode

    def __call__(self, ctx: FileContext, records: list[Record]) -> list[Event]:
        events = [parse_record(record, ctx) for record in records]
        if self.scrub is not None:
            self.scrub.records(events, records, ctx.path)
        if self.encode is not None:
            now = time.time_ns()
            for event in events:
                if TWIN in event.attributes:
                    continue
                # What cannot be encoded stays unencoded: the exporter meets it again and dead-letters it alone.
                with contextlib.suppress(ValueError, TypeError, UnicodeError):
                    event.wire = (self.encode(event, now), len(event.attributes))
        return events
