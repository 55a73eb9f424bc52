"""Stream the events of one log file: decompress, split into records, parse. Constant memory.

A large file is parsed ahead in a forked worker process while the caller redacts, encodes and ships the
events already read: on two cores that overlaps the two halves of the work. Events cross the pipe as plain
tuples (pickling the dataclasses costs twice as much), at most a couple of batches at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import multiprocessing
import operator
import os
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any, Final

from logtail.source import containers
from logtail.source.files import IDENTITY_LINE_CAP, LogFile, file_identity, open_decompressed
from parsers import FileContext, parse_record
from parsers.event import Event
from parsers.records import DEFAULT_MAX_RECORD, splitter_for

CHUNK: Final = 1 << 20
# Below this many bytes of content a file is parsed in place: the worker's fork and pipe would cost more.
AHEAD_MIN_BYTES: Final = 1 << 20
GZIP_RATIO: Final = 10  # LibreChat's logs shrink about this much in their archives
AHEAD_BATCH: Final = 1024
_FIELDS: Final = operator.attrgetter(*(f.name for f in dataclasses.fields(Event)))


def context_for(log_file: LogFile, first_bytes: bytes) -> FileContext:
    """The parser's view of `log_file`, given the first bytes of its decompressed content."""
    return FileContext(
        family=log_file.family,
        path=str(log_file.path),
        name=log_file.path.name,
        identity=file_identity(log_file.path.name, first_bytes),
        file_date_ns=log_file.date_ns,
        attributes=containers.attributes(log_file.path, log_file.family),
    )


def read_events(log_file: LogFile, *, max_record: int = DEFAULT_MAX_RECORD, start: int = 0) -> Iterator[Event]:
    """Every record of `log_file` from byte `start` of the decompressed stream, as events, in file order.

    `start` should be a record boundary (an event's `end`); line numbers stay those of the whole file.
    A read error (a damaged archive) is raised after the events before it.
    """
    try:
        large = os.stat(log_file.path).st_size * (GZIP_RATIO if log_file.gz else 1) >= AHEAD_MIN_BYTES
    except OSError:
        large = False  # the error is raised by opening it
    if large:
        return _parsed_ahead(log_file, max_record, start)
    return _events(log_file, max_record, start)


def _parsed_ahead(log_file: LogFile, max_record: int, start: int) -> Iterator[Event]:
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    worker = multiprocessing.get_context("fork").Process(
        target=_parse_worker, args=(sender, log_file, max_record, start), daemon=True
    )
    # Objects that exist now stay out of the collector's sight while the worker lives: its passes would write to
    # every page holding them and so copy the parent's whole heap into the worker (Python's advice before a fork).
    # Garbage is collected first, or it would be frozen too and copied into the worker.
    gc.collect()
    gc.freeze()
    worker.start()
    sender.close()
    try:
        while True:
            kind, payload = receiver.recv()
            if kind == "events":
                for fields in payload:
                    yield Event(*fields)
            elif kind == "error":
                raise payload
            else:
                return
    finally:
        receiver.close()  # a worker still sending gets a broken pipe and exits
        worker.join(5)
        if worker.is_alive():
            worker.kill()
            worker.join()
        gc.unfreeze()  # or the garbage of every fork would be kept for ever


def _parse_worker(sender: Connection, log_file: LogFile, max_record: int, start: int) -> None:
    batch: list[tuple[Any, ...]] = []
    try:
        for event in _events(log_file, max_record, start):
            batch.append(_FIELDS(event))
            if len(batch) >= AHEAD_BATCH:
                sender.send(("events", batch))
                batch = []
        sender.send(("events", batch))
        sender.send(("end", None))
    except BrokenPipeError:
        pass  # the reader stopped early
    except Exception as exc:  # handed to the reader, which raises it where `read_events` would have
        with contextlib.suppress(OSError):
            sender.send(("events", batch))
            sender.send(("error", exc))
    finally:
        sender.close()


def _events(log_file: LogFile, max_record: int, start: int) -> Iterator[Event]:
    with open_decompressed(log_file.path) as stream:
        chunk = stream.read1(CHUNK)
        while chunk and b"\n" not in chunk and len(chunk) < IDENTITY_LINE_CAP:  # the identity needs the first line
            more = stream.read1(CHUNK)
            if not more:
                break
            chunk += more
        ctx = context_for(log_file, chunk)
        base, line = 0, 1  # stream offset of chunk[0], line number at that offset
        while chunk and start >= base + len(chunk):
            line += chunk.count(b"\n")
            base += len(chunk)
            chunk = stream.read1(CHUNK)
        cut = max(start - base, 0)
        line += chunk.count(b"\n", 0, cut)
        chunk = chunk[cut:]
        splitter = splitter_for(log_file.family, max_record, offset=max(start, base), line=line)
        while chunk:
            for record in splitter.feed(chunk):
                yield parse_record(record, ctx)
            chunk = stream.read1(CHUNK)
        for record in splitter.flush():
            yield parse_record(record, ctx)
