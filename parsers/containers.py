"""Split a container log file into LibreChat records (events.md §1), through the runtime's envelope.

Each line of the file is one envelope (`parsers.envelope`); its text is a piece of the container's output. Pieces
of one output line (partial entries) are joined before anything else, per stream, so a stderr line written in the
middle of a long stdout line neither splits nor joins it. An output line that starts a record (a JSON object, a
debug-text or colourised header, `parsers.console.starts_record`) opens one; a line that does not continues the
stream's open text record (a message with raw newlines, a `DEBUG_CONSOLE` metadata block), or is a record of its
own when the stream has none open (another program's output). A file holds one container's output, so records
never cross containers.

Offsets are those of the file: a record starts at its first envelope, so `log.record.uid` works as for LibreChat's
own files. Records are handed out as they complete. Their `end`, where a checkpoint after them goes, is their last
envelope's end, unless a record of another stream is still open before that: then it is where that one starts,
so a checkpoint never skips the start of a record not handed out yet (after a restart the records between are
read again, which the at-least-once rule allows, rather than lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from parsers.console import starts_record
from parsers.envelope import DOCKER, Entry, decode_cri, decode_docker
from parsers.records import Line, Record, _Lines

# An envelope line can be longer than the 16 KiB piece it carries (Docker escapes control characters six-fold).
ENVELOPE_MAX: Final = 128 * 1024
TAIL: Final = 64  # file bytes kept before a checkpoint, for the tailer's offset marker


@dataclass(slots=True)
class ContainerRecord(Record):
    """A record of a container's output: `data` is the output (envelopes removed, pieces joined, lines ending in
    newlines), `observed_ns` the runtime's time for its first piece, `next_line` the file's line at `end` and
    `tail` the file's last bytes before `end` (None: not known, or that envelope line was cut)."""

    observed_ns: int = 0
    stream: str = ""
    next_line: int = 0
    tail: bytes | None = None


@dataclass(slots=True)
class _Open:
    start: int
    line: int
    before: bytes | None  # the file's bytes before `start`
    observed_ns: int
    stream: str
    text: bool  # a text record, which following non-header lines continue
    end: int = 0
    next_line: int = 0
    tail: bytes | None = None  # the file's bytes before `end`
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    cut: bool = False
    partial: bool = False  # its last output line is not complete yet

    def add(self, piece: bytes, max_bytes: int) -> None:
        room = max_bytes - self.size
        if len(piece) > room:
            self.cut = True
            piece = piece[: max(room, 0)]
        if piece:
            self.parts.append(piece)
            self.size += len(piece)


class ContainerSplitter:
    """Records of a Docker json-file (`family="docker"`) or CRI (`"cri"`) log file."""

    __slots__ = ("_before", "_decode", "_done", "_lines", "_max", "_open", "_queue", "_ready")

    def __init__(self, family: str, max_bytes: int, offset: int = 0, line: int = 1) -> None:
        self._decode = decode_docker if family == DOCKER else decode_cri
        self._max = max_bytes
        self._lines = _Lines(max(max_bytes, ENVELOPE_MAX), offset, line)
        self._open: dict[str, _Open] = {}  # per stream: the record its next output line goes to or may continue
        self._queue: list[_Open] = []  # the open records, in the order they start
        self._ready: list[Record] = []  # complete, in the order they completed
        self._done: tuple[int, int, bytes | None] = (offset, line, None)  # furthest end completed: line, tail there
        self._before: bytes | None = b"" if offset == 0 else None  # the file's bytes before the next envelope

    @property
    def pending(self) -> int:
        return self._lines.offset - self.position + self._lines.held

    @property
    def position(self) -> int:
        return self._queue[0].start if self._queue else self._lines.offset

    def feed(self, chunk: bytes) -> list[Record]:
        for item in self._lines.feed(chunk):
            self._take(item)
        return self._release()

    def flush(self, final: bool = True) -> list[Record]:
        """Hand out the open records. Unless `final`, an output line whose pieces are still arriving (and an
        envelope line not yet ended by its newline) stays held: the runtime writes them whole, soon."""
        if final:
            last = self._lines.take_unfinished()
            if last:
                self._take(last)
        for record in list(self._queue):
            if final or not record.partial:
                self._complete(record)
        return self._release()

    def _take(self, item: Line) -> None:
        data, start, end, line, truncated = item
        entry = None if truncated else self._decode(data)
        tail = None if truncated else data[-TAIL:]
        if entry is None:  # not an envelope: a record of its own, which the parser reports as unparsed
            record = _Open(start, line, self._before, 0, "", text=False, end=end, next_line=line + 1, tail=tail)
            record.add(data, self._max)
            record.cut = truncated
            self._queue.append(record)
            self._complete(record)
        else:
            self._piece(entry, start, end, line, tail)
        self._before = tail

    def _piece(self, entry: Entry, start: int, end: int, line: int, tail: bytes | None) -> None:
        current = self._open.get(entry.stream)
        if current is not None and (current.partial or (current.text and not starts_record(entry.text))):
            if not current.partial:
                current.add(b"\n", self._max)
        else:
            if current is not None:
                self._complete(current)
            # Only a record begun by a LibreChat header takes the lines that follow (a Node warning stands alone).
            text = not entry.text.startswith(b"{") and starts_record(entry.text)
            current = _Open(start, line, self._before, entry.time_ns, entry.stream, text=text)
            self._queue.append(current)
            self._open[entry.stream] = current
        current.add(entry.text, self._max)
        current.end, current.next_line, current.partial, current.tail = end, line + 1, entry.partial, tail
        if not current.partial and not current.text:
            self._complete(current)

    def _complete(self, record: _Open) -> None:
        self._queue.remove(record)
        if self._open.get(record.stream) is record:
            del self._open[record.stream]
        if record.end > self._done[0]:
            self._done = (record.end, record.next_line, record.tail)
        # Every envelope before the first open record belongs to a complete one.
        end, next_line, tail = self._done
        if self._queue and self._queue[0].start < end:
            first = self._queue[0]
            end, next_line, tail = first.start, first.line, first.before
        data = b"".join(record.parts)
        if not record.cut:
            data += b"\n"
        self._ready.append(
            ContainerRecord(
                data,
                record.start,
                end,
                record.line,
                record.cut,
                observed_ns=record.observed_ns,
                stream=record.stream,
                next_line=next_line,
                tail=tail,
            )
        )

    def _release(self) -> list[Record]:
        out, self._ready = self._ready, []
        return out
