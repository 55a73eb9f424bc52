"""Stream the records and events of one log file: decompress, split into records, parse. Constant memory.

`read_events` parses in this process; `logtail/source/parse_workers.py` spreads the same records over worker
processes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Final

from logtail.source import containers
from logtail.source.files import IDENTITY_LINE_CAP, LogFile, file_identity, open_decompressed
from parsers import FileContext, parse_record
from parsers.event import Event
from parsers.records import DEFAULT_MAX_RECORD, Record, splitter_for

# A plain file's read gives all of it (an archive's gives what one deflate block holds): 256 KiB split at once is
# about one batch of records; a whole MiB held four batches' records alive and the 1 GB replay 8 MiB higher.
CHUNK: Final = 256 << 10
# What a damaged archive raises part-way through.
READ_ERRORS: Final = (OSError, EOFError, zlib.error)


def reason(exc: BaseException) -> str:
    """A read error in a few words: the system's text for an OSError, else the exception's own."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


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
    for ctx, records in record_chunks(log_file, max_record, start):
        for record in records:
            yield parse_record(record, ctx)


def record_chunks(log_file: LogFile, max_record: int, start: int) -> Iterator[tuple[FileContext, list[Record]]]:
    """The records of `log_file` from byte `start` on, as the splitter cuts them out of each chunk read."""
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
            yield ctx, splitter.feed(chunk)
            chunk = stream.read1(CHUNK)
        yield ctx, splitter.flush()
