"""Parse, scrub and encode records in worker processes, handing the events back in file order.

`jobs` processes parse: this one and `jobs - 1` forked workers. The main process reads and splits each file
(`read.record_chunks`) and deals batches of records to the workers in turn; each parses them, runs the
stateless half of the pipeline (`Scrub`) and encodes every event's OTLP LogRecord (`Event.wire`). Results are
taken back in the order the batches were dealt, so correlation, metrics, shipping and checkpoints in the main
process see the records in file order. When the answer it needs next is not ready, the main process parses the
next batch itself instead of waiting: it keeps every core busy with one worker fewer (each worker holds its own
copy of much of the heap) and balances itself whatever the mix of files.

A worker gets its next batch as soon as its last one is taken back, before that one is shipped: the workers
parse while the main process waits for the backend. Only one batch is ever in flight per worker, so neither
side can block the other on a full pipe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gc
import multiprocessing
import operator
import os
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Final, Self

from logtail.export.encode import EncodeRecord
from logtail.pipeline import Scrub
from logtail.source.files import LogFile, content_size
from logtail.source.read import READ_ERRORS, record_chunks
from logtail.source.work import Work
from parsers import FileContext
from parsers.containers import ContainerRecord
from parsers.event import Event
from parsers.records import Record

# What a pipe to or from a worker holds: Linux's default fs.pipe-max-size, more than a batch of 1 KB records.
PIPE_BYTES: Final = 1 << 20
# Records per dealt batch. Each worker holds one and the main process two or three (in its pipe, being shipped):
# 512 takes 6 MiB less than 1024 in all processes at the same speed.
BATCH: Final = 512
INFERRED: Final = "logtail.time_inferred"
# Below this many bytes of content a file is parsed in place: dealing it out would cost more than it saves.
PARALLEL_MIN_BYTES: Final = 256 << 10
# Records and events cross the pipes as plain tuples: pickling the dataclasses costs twice as much. The pipes
# join this process and its own forked children only; nothing read from disk is ever unpickled.
_FIELDS: Final = operator.attrgetter(*(f.name for f in dataclasses.fields(Event)))
# A container's records carry the runtime's time and stream besides (`kind` True in a batch).
_RECORD_FIELDS: Final = {
    kind: operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))
    for kind, cls in ((False, Record), (True, ContainerRecord))
}

RecordBatch = tuple[FileContext, list[Record]]


class WorkerFailed(RuntimeError):
    """A parse worker raised (a bug: parsing never raises on content); the text names the exception."""


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def large(log_file: LogFile) -> bool:
    """Whether the file's content is worth dealing out (an unreadable file is not: its error comes when read)."""
    try:
        return content_size(log_file) >= PARALLEL_MIN_BYTES
    except OSError:
        return False


def jobs_for(files: list[LogFile], jobs: int | None = None) -> int:
    """`jobs` (default: one per CPU), or 1 when no file is large enough to be dealt out: no fork for nothing."""
    if not any(large(f) for f in files):
        return 1
    return jobs or default_jobs()


class _Channel:
    """Two one-way pipes to a worker, each made to hold a whole batch where Linux allows: a sender never waits for
    the other side to be scheduled (one socket pair's buffer of 208 KiB took two turns for a batch of records)."""

    __slots__ = ("inbound", "outbound")

    def __init__(self, outbound: Connection, inbound: Connection) -> None:
        self.outbound = outbound
        self.inbound = inbound

    @classmethod
    def pair(cls, context: Any) -> tuple[_Channel, _Channel]:
        """(this side, the worker's side)."""
        to_read, to_write = context.Pipe(duplex=False)
        from_read, from_write = context.Pipe(duplex=False)
        for conn in (to_write, from_write):
            with contextlib.suppress(OSError, AttributeError):  # older kernels, a lower fs.pipe-max-size
                fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        return cls(to_write, from_read), cls(from_write, to_read)

    def send(self, message: object) -> None:
        self.outbound.send(message)

    def recv(self) -> Any:
        return self.inbound.recv()

    def ready(self) -> bool:
        """Whether an answer can be taken without waiting."""
        return self.inbound.poll()

    def close(self) -> None:
        self.outbound.close()
        self.inbound.close()


class ParseWorkers:
    """`jobs` processes (this one and `jobs - 1` workers) that turn log files into batches of events, in file order."""

    def __init__(self, jobs: int, *, scrub: Scrub | None = None, encode: EncodeRecord | None = None) -> None:
        self._work = Work(scrub, encode)
        self._workers: list[tuple[BaseProcess, _Channel]] = []
        if jobs > 1:
            # Objects that exist now stay out of the collector's sight while the workers live, in them and here:
            # a pass writes to every page holding them, and a page written on either side of a fork is copied
            # (unfrozen in this process, 8 MiB more of the 1 GB replay's PSS). Garbage goes first.
            gc.collect()
            gc.freeze()
            context = multiprocessing.get_context("fork")
            for _ in range(jobs - 1):
                mine, theirs = _Channel.pair(context)
                # The child closes its copies of this side's ends (its own and its elder siblings'): then this
                # process's death, even by SIGKILL, is the end of the worker's input, and the worker exits.
                ends = [mine, *(channel for _worker, channel in self._workers)]
                worker = context.Process(target=_serve, args=(theirs, ends, self._work), daemon=True)
                worker.start()
                theirs.close()
                self._workers.append((worker, mine))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._workers:
            gc.unfreeze()
        for _worker, conn in self._workers:
            with contextlib.suppress(OSError):
                conn.send(None)  # stop
            conn.close()
        for worker, _conn in self._workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()
                worker.join()
        self._workers.clear()

    def batches(self, log_file: LogFile, *, max_record: int, start: int = 0) -> Iterator[list[Event]]:
        """The events of `log_file` from byte `start` on, in batches, in file order. A read error (a damaged
        archive) is raised after the events before it."""
        source = _record_batches(log_file, max_record, start)
        if not self._workers or not large(log_file):
            for ctx, records in source:
                yield self._work(ctx, records)
            return
        yield from self._dealt(source)

    def _dealt(self, source: Iterator[RecordBatch]) -> Iterator[list[Event]]:
        # The batches in the order they were taken from `source`: a worker's answer to come, or one parsed here.
        in_flight: deque[_Channel | _Parsed] = deque()
        failure: list[BaseException] = []

        def take() -> RecordBatch | None:
            if failure:
                return None
            try:
                return next(source, None)
            except READ_ERRORS as exc:  # raised once the batches before the damage are handed out
                failure.append(exc)
                return None

        def deal(conn: _Channel) -> None:
            if (batch := take()) is not None:
                ctx, records = batch
                kind = isinstance(records[0], ContainerRecord)
                conn.send((ctx, kind, [_RECORD_FIELDS[kind](record) for record in records]))
                in_flight.append(conn)

        for _worker, conn in self._workers:
            deal(conn)
        last_time: int | None = None
        try:
            while in_flight:
                head = in_flight[0]
                # Rather than wait for a worker, parse the next batch here (one at a time: memory stays bounded).
                if (
                    isinstance(head, _Channel)
                    and not isinstance(in_flight[-1], _Parsed)
                    and not head.ready()
                    and (batch := take()) is not None
                ):
                    in_flight.append(_Parsed(self._work, batch))
                    continue
                in_flight.popleft()
                if isinstance(head, _Parsed):
                    events = head.events()
                else:
                    answer: list[tuple[Any, ...]] | str = head.recv()
                    deal(head)
                    if isinstance(answer, str):
                        raise WorkerFailed(answer)
                    events = [Event(*fields) for fields in answer]
                last_time = _carry_time(events, last_time)
                yield events
        finally:
            for pending in in_flight:  # stopped early: take back what is in flight, or the next file would get it
                if isinstance(pending, _Channel):
                    pending.recv()
        if failure:
            raise failure[0]


class _Parsed:
    """A batch parsed in this process, or what parsing it raised, due when the batches dealt before it are."""

    __slots__ = ("_error", "_events")

    def __init__(self, work: Work, batch: RecordBatch) -> None:
        self._events: list[Event] = []
        self._error: Exception | None = None
        try:
            self._events = work(*batch)
        except Exception as exc:  # raised in its turn, after the events before it, as a worker's would be
            self._error = exc

    def events(self) -> list[Event]:
        if self._error is not None:
            raise self._error
        return self._events


def _record_batches(log_file: LogFile, max_record: int, start: int) -> Iterator[RecordBatch]:
    """Batches of at most BATCH records."""
    for ctx, records in record_chunks(log_file, max_record, start):
        for first in range(0, len(records), BATCH):
            yield ctx, records[first : first + BATCH]


def _carry_time(events: list[Event], last_time: int | None) -> int | None:
    """A worker infers the time of a record without one from the records before it in its own batch only; the
    first such records of a batch take the time of the batch before (and are encoded again with it)."""
    if last_time is not None:
        for event in events:
            if not event.attributes.get(INFERRED):
                break
            event.time_unix_nano = last_time
            event.wire = None
    for event in reversed(events):
        if not event.attributes.get(INFERRED):
            return event.time_unix_nano
    return last_time


def _serve(conn: _Channel, ends: list[_Channel], work: Work) -> None:
    """A worker: one batch of records in, its events out, until told to stop or the main process is gone."""
    for end in ends:
        end.close()
    try:
        while (batch := conn.recv()) is not None:
            ctx, kind, records = batch
            cls = ContainerRecord if kind else Record
            try:
                events = work(ctx, [cls(*fields) for fields in records])
            except Exception as exc:  # named to the main process, which raises it where the events were due
                conn.send(f"{type(exc).__name__}: {exc}")
            else:
                conn.send([_FIELDS(event) for event in events])
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        conn.close()
