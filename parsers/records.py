"""Split a byte stream into records (events.md §1).

Splitters are incremental: `feed` takes whatever bytes arrived and returns the records that are
complete; `flush` hands out the one still held (end of an archive, or a live file that stopped
growing). Offsets are positions in the decompressed stream, so a record keeps the same offsets
whether it is read from the live file or from its `.gz` successor.

Lossless: joined in order, the `data` of all records is the input, except that whitespace-only
lines of JSON files ride along with the record after them and a truncated record keeps only its
first `max_bytes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Protocol

DEFAULT_MAX_RECORD: Final = 1 << 20

# A debug-file record starts with `<ISO-8601 ms UTC> <winston level>` followed by ": " or the line end.
DEBUG_HEADER: Final = re.compile(
    rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?:error|warn|info|http|verbose|debug|activity|silly)(?:: |\r?\n|$)"
)
_DIGITS: Final = frozenset(b"0123456789")


# (bytes incl. newline, start offset, end offset, 1-based line number, truncated)
Line = tuple[bytes, int, int, int, bool]


@dataclass(slots=True)
class Record:
    """One Winston write: its bytes and where it sits in the (decompressed) file."""

    data: bytes
    start: int
    end: int
    line: int
    truncated: bool = False


class Splitter(Protocol):
    @property
    def pending(self) -> int:
        """Bytes held for a record that is not complete yet."""
        ...

    @property
    def position(self) -> int:
        """Offset of the first byte not yet handed out in a record."""
        ...

    def feed(self, chunk: bytes) -> list[Record]: ...

    def flush(self, final: bool = True) -> list[Record]:
        """The record still held. `final=False`: the file may still grow (container splitters then keep a line
        whose pieces are still arriving)."""
        ...


class _Capped:
    """The first `cap` bytes of what is added, in pieces until taken."""

    __slots__ = ("_cap", "_kept", "_pieces")

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._pieces: list[bytes] = []
        self._kept = 0

    def add(self, piece: bytes) -> None:
        room = self._cap - self._kept
        if room > 0 and piece:
            kept = piece[:room]
            self._pieces.append(kept)
            self._kept += len(kept)

    def take(self) -> bytes:
        data = b"".join(self._pieces)
        self._pieces, self._kept = [], 0
        return data


class _Lines:
    """Cuts bytes into complete lines, capping each at `max_bytes` and remembering offsets."""

    __slots__ = ("_held", "_held_len", "_max", "next_line", "offset")

    def __init__(self, max_bytes: int, offset: int = 0, line: int = 1) -> None:
        self._max = max_bytes
        self._held = _Capped(max_bytes)  # the unfinished line
        self._held_len = 0  # its real length
        self.offset = offset  # stream offset of the unfinished line
        self.next_line = line  # its line number

    @property
    def held(self) -> int:
        return self._held_len

    def feed(self, chunk: bytes) -> list[Line]:
        """Complete lines as (bytes incl. newline, start, end, line number, truncated)."""
        out: list[Line] = []
        if not chunk:
            return out
        parts = chunk.split(b"\n")
        tail = parts.pop()
        for i, part in enumerate(parts):
            if i == 0 and self._held_len:
                self._hold(part)
                item = self._take_held(newline=True)
            else:
                truncated = len(part) > self._max
                data = part[: self._max] if truncated else part + b"\n"
                item = (data, self.offset, self.offset + len(part) + 1, self.next_line, truncated)
            out.append(item)
            self.offset = item[2]
            self.next_line += 1
        if tail:
            self._hold(tail)
        return out

    def take_unfinished(self) -> Line | None:
        if not self._held_len:
            return None
        item = self._take_held(newline=False)
        self.offset = item[2]
        return item

    def _take_held(self, newline: bool) -> Line:
        cut = self._held_len > self._max
        data = self._held.take()
        if newline and not cut:
            data += b"\n"
        item = (data, self.offset, self.offset + self._held_len + newline, self.next_line, cut)
        self._held_len = 0
        return item

    def _hold(self, piece: bytes) -> None:
        self._held_len += len(piece)
        self._held.add(piece)


class JsonLineSplitter:
    """error, meiliSync and login-logs files: one JSON object per line."""

    __slots__ = ("_lead", "_lines")

    def __init__(self, max_bytes: int = DEFAULT_MAX_RECORD, offset: int = 0, line: int = 1) -> None:
        self._lines = _Lines(max_bytes, offset, line)
        self._lead: list[Line] = []  # whitespace-only lines held

    @property
    def pending(self) -> int:
        return self._lines.held + sum(item[2] - item[1] for item in self._lead)

    @property
    def position(self) -> int:
        return self._lead[0][1] if self._lead else self._lines.offset

    def feed(self, chunk: bytes) -> list[Record]:
        return self._records(self._lines.feed(chunk))

    def flush(self, final: bool = True) -> list[Record]:
        last = self._lines.take_unfinished()
        records = self._records([last] if last else [])
        # Trailing whitespace-only lines are not records; they stay before `position`.
        return records

    def _records(self, lines: list[Line]) -> list[Record]:
        out: list[Record] = []
        for item in lines:
            data, start, end, line, truncated = item
            if not truncated and not data.strip():
                self._lead.append(item)
                continue
            if self._lead:
                start = self._lead[0][1]
                data = b"".join(lead[0] for lead in self._lead) + data
                self._lead.clear()
            out.append(Record(data, start, end, line, truncated))
        return out


class DebugSplitter:
    """debug files: a header line plus every following line up to the next header.

    Each chunk is walked from newline to newline, and only a line that starts with a digit is matched against
    the header: a record is then one slice of the chunk (debug files are most of a host's bytes). At most
    `max_bytes` of a record are kept, and of a line not ended yet; a record longer than that is cut and flagged.
    """

    __slots__ = ("_held", "_line", "_max", "_next_line", "_offset", "_record", "_start", "_top")

    def __init__(self, max_bytes: int = DEFAULT_MAX_RECORD, offset: int = 0, line: int = 1) -> None:
        self._max = max_bytes
        self._record = _Capped(max_bytes)  # the record being read (the unfinished line apart)
        self._start = offset  # stream offset of the record being read
        self._top = line  # its line number
        self._line = _Capped(max_bytes)  # the line not ended yet
        self._held = 0  # real length of the line not ended yet
        self._offset = offset  # stream offset of that line (of the next line when none is held)
        self._next_line = line  # its line number

    @property
    def pending(self) -> int:
        return self._offset - self._start + self._held

    @property
    def position(self) -> int:
        return self._start

    def feed(self, chunk: bytes) -> list[Record]:
        out: list[Record] = []
        at = 0
        if self._held:
            newline = chunk.find(b"\n")
            if newline == -1:
                self._hold(chunk)
                return out
            self._hold(chunk[:newline])
            self._end_line(True, out)
            at = newline + 1
        base = self._offset - at  # stream offset of chunk[0]
        complete = chunk.rfind(b"\n") + 1  # lines before this end in this chunk
        kept_from = at  # chunk[kept_from:at] belongs to the record being read
        number = self._next_line
        cap = self._max
        while at < complete:
            newline = chunk.find(b"\n", at, complete)
            # A header is matched on what a line keeps: its first `max_bytes` when it is longer.
            if chunk[at] in _DIGITS and DEBUG_HEADER.match(chunk, at, newline + 1 if newline - at <= cap else at + cap):
                self._record.add(chunk[kept_from:at])
                kept_from = at
                self._emit(base + at, out)
                self._top = number
            at = newline + 1
            number += 1
        self._record.add(chunk[kept_from:at])
        self._offset = base + at
        self._next_line = number
        if at < len(chunk):
            self._hold(chunk[at:])
        return out

    def flush(self, final: bool = True) -> list[Record]:
        out: list[Record] = []
        if self._held:
            self._end_line(False, out)
        self._emit(self._offset, out)
        return out

    def _hold(self, piece: bytes) -> None:
        self._line.add(piece)
        self._held += len(piece)

    def _end_line(self, newline: bool, out: list[Record]) -> None:
        """The held line, ended by a newline or by the end of the file (which does not count a line)."""
        data = self._line.take()
        if newline and self._held <= self._max:
            data += b"\n"
        if data and data[0] in _DIGITS and DEBUG_HEADER.match(data):
            self._emit(self._offset, out)
            self._top = self._next_line
        self._record.add(data)
        self._offset += self._held + newline
        self._next_line += newline
        self._held = 0

    def _emit(self, upto: int, out: list[Record]) -> None:
        data = self._record.take()
        if upto > self._start:
            out.append(Record(data, self._start, upto, self._top, upto - self._start > len(data)))
        self._start = upto


def splitter_for(family: str, max_bytes: int = DEFAULT_MAX_RECORD, offset: int = 0, line: int = 1) -> Splitter:
    if family in ("docker", "cri"):
        from parsers.containers import ContainerSplitter  # imported here: it builds on this module

        return ContainerSplitter(family, max_bytes, offset, line)
    if family == "debug":
        return DebugSplitter(max_bytes, offset, line)
    return JsonLineSplitter(max_bytes, offset, line)
