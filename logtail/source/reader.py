"""One followed file: an open descriptor (or a gzip stream), a record splitter and the file's checkpoint.

The descriptor of a plain file stays open after the rotator unlinks the file, so a tail not yet read when
LibreChat gzips and deletes a file is still read from it. An archive cannot grow: it is opened when read and
closed once read, like every finished file, so a directory of many archives does not run out of descriptors.
Records come out whole: the splitter holds a record until it is complete, and `flush` hands out the last one
of a file that stopped growing. Each record carries the checkpoint it advances, so a commit after `Sink.ship`
returned moves exactly that file.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from typing import Final

from logtail.source.checkpoint import Checkpoint
from logtail.source.files import IDENTITY_LINE_CAP, LogFile, file_identity, open_decompressed
from logtail.source.fingerprint import FINGERPRINT_SIZE, MARKER_SIZE, NO_MARKER, Fingerprint
from logtail.source.read import context_for
from logtail.source.work import Work
from parsers import FileContext
from parsers.containers import ContainerRecord
from parsers.event import Event
from parsers.records import Record, Splitter, splitter_for

CHUNK: Final = 1 << 20

log = logging.getLogger("logtail.source")


class Rewritten(Exception):
    """The plain file no longer holds the bytes read before: truncated and written again past the position
    (copytruncate followed by writes) before a scan noticed. What was just read belongs to new content."""


@dataclass(slots=True)
class Claim:
    """How far the content shared by a file and its copy (logrotate copytruncate) has been read.

    Both readers of the same bytes hold the same claim and skip records before `upto`, so a record read
    from the original just before the truncation is not read again from the copy.
    """

    upto: int = 0


class Item:
    """A record read: its event (None when the copy's twin reader sent it) and the checkpoint it advances.

    Where the checkpoint goes (`end`, `line`, `tail`) is worked out from the record only for the last record
    of a file that a commit moves, not for every record read."""

    __slots__ = ("checkpoint", "event", "record")

    def __init__(self, event: Event | None, checkpoint: Checkpoint, record: Record) -> None:
        self.event = event
        self.checkpoint = checkpoint
        self.record = record

    @property
    def end(self) -> int:
        return self.record.end

    @property
    def line(self) -> int:
        """The file's line at `end`."""
        record = self.record
        if isinstance(record, ContainerRecord):
            return record.next_line
        line = record.line + record.data.count(b"\n")
        return line + 1 if record.truncated and not record.data.endswith(b"\n") else line

    @property
    def tail(self) -> bytes | None:
        """The record's last bytes, for the offset marker (None: cut short, nothing to check)."""
        record = self.record
        if isinstance(record, ContainerRecord):  # its data is the output, not the file's bytes
            return record.tail[-MARKER_SIZE:] if record.tail else None
        return None if record.truncated else record.data[-MARKER_SIZE:]


@dataclass(slots=True)
class Reader:
    file: LogFile
    stream: io.BufferedIOBase | None  # None: an archive not being read, or a finished file
    checkpoint: Checkpoint
    max_record: int
    last_data: float  # when bytes last arrived (monotonic)
    claim: Claim = field(default_factory=Claim)
    work: Work = field(default_factory=Work)  # what turns its records into events
    position: int = 0  # next byte of the decompressed stream to read
    splitter: Splitter = field(init=False)
    ctx: FileContext | None = None
    lost_since: float | None = None  # when the file was last found under a watched name
    finished: bool = False
    # The first bytes as read, while reading from byte 0: the fingerprint grows with them, so a file truncated
    # before a scan looked at it again still has the identity of what was read (its copy is recognised).
    prefix: bytes | None = None
    tail: bytes = b""  # the last bytes read from a plain file: still there after each read, or it was rewritten

    def __post_init__(self) -> None:
        self.position = self.checkpoint.offset
        self.prefix = b"" if self.position == 0 else None
        self.splitter = splitter_for(self.file.family, self.max_record, self.position, self.checkpoint.line)
        self.claim.upto = max(self.claim.upto, self.position)

    @property
    def inode(self) -> tuple[int, int] | None:
        """(device, inode) of a plain file being followed; None for an archive, which is matched by content."""
        if self.file.gz or self.stream is None:
            return None
        status = os.fstat(self.stream.fileno())
        return status.st_dev, status.st_ino

    @property
    def unlinked(self) -> bool:
        return not self.file.gz and os.fstat(self.opened().fileno()).st_nlink == 0

    def size(self) -> int:
        """Bytes on disk (an archive's decompressed size is not known, nor needed once a file is finished:
        what was read so far)."""
        return self.position if self.file.gz or self.stream is None else os.fstat(self.stream.fileno()).st_size

    def head(self, n: int = IDENTITY_LINE_CAP) -> bytes:
        if self.file.gz:
            with open_decompressed(self.file.path) as stream:
                return stream.read(n)
        return os.pread(self.opened().fileno(), n, 0)

    def opened(self) -> io.BufferedIOBase:
        """The stream at `position`; an archive is opened (and decompressed up to there) when first read."""
        if self.stream is None:
            stream = open_decompressed(self.file.path)
            try:
                stream.seek(self.position)
            except BaseException:
                stream.close()
                raise
            self.stream = stream
        return self.stream

    def read(self, budget: int) -> tuple[list[Item], int]:
        """Records completed by up to `budget` new bytes, and how many bytes were read (0: at the end)."""
        stream = self.opened()
        chunk = stream.read1(budget)
        if chunk and not self.file.gz:
            self._check_unchanged(stream, chunk)
        if self.prefix is not None and len(self.prefix) < FINGERPRINT_SIZE and chunk:
            self.prefix += chunk[: FINGERPRINT_SIZE - len(self.prefix)]
            self.checkpoint.fingerprint = Fingerprint.of(self.prefix)
        self.position += len(chunk)
        return self._items(self.splitter.feed(chunk)) if chunk else [], len(chunk)

    def _check_unchanged(self, stream: io.BufferedIOBase, chunk: bytes) -> None:
        """Raise Rewritten unless the file still starts as fingerprinted and holds the bytes read before this
        chunk. Checked after the read: content replaced before or during it fails the check; content replaced
        only after it was read leaves a chunk that is right (its copy, if any, is then resumed as usual)."""
        fd = stream.fileno()
        fingerprint = self.checkpoint.fingerprint
        held = not self.tail or os.pread(fd, len(self.tail), self.position - len(self.tail)) == self.tail
        if not held or not fingerprint.matches(os.pread(fd, fingerprint.size, 0)):
            raise Rewritten(str(self.file.path))
        self.tail = (self.tail + chunk)[-MARKER_SIZE:]

    def flush(self, final: bool = True) -> list[Item]:
        """The record held back because no byte followed it (the last of a file that stopped growing); unless
        `final`, a container's line whose pieces are still arriving stays held."""
        return self._items(self.splitter.flush(final))

    def finish(self) -> list[Item]:
        """The file is read to its end for good: its last record, and its descriptor closed."""
        self.finished = True
        items = self.flush()
        self.close()
        return items

    def _context(self) -> FileContext:
        if self.ctx is None:
            head = self.head()
            self.ctx = context_for(self.file, head)
            # The name the file had when first seen keeps the record uids stable across renames and gzip.
            self.ctx.identity = file_identity(self.checkpoint.name, head)
            self.ctx.last_time_ns = self.checkpoint.last_time_ns
        return self.ctx

    def _items(self, records: list[Record]) -> list[Item]:
        if not records:
            return []
        ctx = self._context()
        # A record the copy's twin reader sent already (before the claim) gets no event.
        upto, checkpoint = self.claim.upto, self.checkpoint
        fresh = [record for record in records if record.start >= upto]
        events = self.work(ctx, fresh)
        self.claim.upto = max(upto, records[-1].end)
        if len(fresh) == len(records):
            return [Item(event, checkpoint, record) for event, record in zip(events, records, strict=True)]
        by_record = iter(events)
        return [Item(next(by_record) if record.start >= upto else None, checkpoint, record) for record in records]

    def restart(self, now: float) -> Checkpoint:
        """The file was truncated or overwritten in place: read it again from its first byte.

        Returns the checkpoint of the content that was there, so a copy of it (copytruncate) resumes there.
        """
        old = self.checkpoint
        self.opened().seek(0)
        self.checkpoint = Checkpoint(Fingerprint.of(b""), old.name, str(self.file.path), 0)
        self.claim = Claim()
        self.position = 0
        self.prefix = b""
        self.tail = b""
        self.splitter = splitter_for(self.file.family, self.max_record)
        self.ctx = None
        self.last_data = now
        return old

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def marker_holds(stream: io.BufferedIOBase, checkpoint: Checkpoint, gz: bool) -> bool:
    """Whether the bytes before the checkpoint's offset are still the acknowledged ones (Fluent Bit's marker).

    Leaves a gzip stream positioned at the offset (decompressing up to it); a plain stream is left alone.
    """
    size = checkpoint.marker.size
    start = checkpoint.offset - size
    if gz:
        stream.seek(start)
        tail = stream.read(size)
        return len(tail) == size and checkpoint.marker.matches(tail)
    if os.fstat(stream.fileno()).st_size < checkpoint.offset:
        return False
    return checkpoint.marker.matches(os.pread(stream.fileno(), size, start))


def open_reader(
    log_file: LogFile, checkpoint: Checkpoint, *, max_record: int, now: float, work: Work | None = None
) -> Reader:
    """A reader positioned at the checkpoint, or at the file's start when its marker no longer holds.

    An archive's descriptor is not kept: it is opened again when read."""
    if log_file.gz and not checkpoint.offset:
        return Reader(log_file, None, checkpoint, max_record, now, work=work or Work())
    stream = open_decompressed(log_file.path)
    try:
        if checkpoint.offset and not marker_holds(stream, checkpoint, log_file.gz):
            log.warning(
                "%s changed below its checkpoint (offset %d); reading it from the beginning",
                log_file.path,
                checkpoint.offset,
            )
            checkpoint.offset, checkpoint.line, checkpoint.marker = 0, 1, NO_MARKER
            checkpoint.last_time_ns = None
        stream.seek(checkpoint.offset)
    except BaseException:
        stream.close()
        raise
    if log_file.gz:
        stream.close()
        return Reader(log_file, None, checkpoint, max_record, now, work=work or Work())
    return Reader(log_file, stream, checkpoint, max_record, now, work=work or Work())
