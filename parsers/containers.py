"""Split a container log file into LibreChat records (events.md §1), through the runtime's envelope.

Each line of the file is one envelope (`parsers.envelope`); its text is a piece of the container's output. Pieces
of one output line (partial entries) are joined before anything else, per stream, so a stderr line written in the
middle of a long stdout line neither splits nor joins it. An output line that starts a record (a JSON object, a
debug-text or colourised header, `parsers.console.starts_record`) opens one; a line that does not continues the
stream's open text record (a message with raw newlines, a `DEBUG_CONSOLE` metadata block), or is a record of its
own when the stream has none open (another program's output). A file holds one
container's output, so records never cross containers.

Offsets are those of the file: a record starts at its first envelope and ends after its last, so checkpoints,
markers and `log.record.uid` work as for LibreChat's own files. Records come out in the order they start; a
record's `end` is never before the previous one's (an interleaved stderr line is released with the stdout line
around it), so a checkpoint at an `end` never skips a record still being assembled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from parsers.console import starts_record
from parsers.envelope import DOCKER, Entry, decode_cri, decode_docker
from parsers.records import Line, Record, _Lines

# An envelope line can be longer than the 16 KiB piece it carries (Docker escapes control characters six-fold).
ENVELOPE_MAX: Final = 128 * 1024
TAIL: Final = 64  # file bytes kept before a record's end, for the tailer's offset marker


@dataclass(slots=True)
class ContainerRecord(Record):
    """A record of a container's output: `data` is the output (envelopes removed, pieces joined, lines ending in
    newlines), `observed_ns` the runtime's time for its first piece, `next_line` the file's line at `end` and
    `tail` the file's last bytes before `end` (None: that envelope line was cut)."""

    observed_ns: int = 0
    stream: str = ""
    next_line: int = 0
    tail: bytes | None = None


@dataclass(slots=True)
class _Open:
    start: int
    end: int
    line: int
    next_line: int
    observed_ns: int
    stream: str
    text: bool  # a text record, which following non-header lines continue
    tail: bytes | None = None  # the file's bytes before `end`
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    cut: bool = False
    partial: bool = False  # its last output line is not complete yet
    done: bool = False

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

    __slots__ = ("_decode", "_end", "_end_line", "_end_tail", "_lines", "_max", "_open", "_queue")

    def __init__(self, family: str, max_bytes: int, offset: int = 0, line: int = 1) -> None:
        self._decode = decode_docker if family == DOCKER else decode_cri
        self._max = max_bytes
        self._lines = _Lines(max(max_bytes, ENVELOPE_MAX), offset, line)
        self._open: dict[str, _Open] = {}  # per stream: the record its next output line may continue
        self._queue: list[_Open] = []  # records not handed out yet, in the order they start
        self._end, self._end_line = offset, line  # the furthest end handed out, and the line there
        self._end_tail: bytes | None = None

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
        for stream, record in list(self._open.items()):
            if final or not record.partial:
                record.done = True
                del self._open[stream]
        return self._release()

    def _take(self, item: Line) -> None:
        data, start, end, line, truncated = item
        entry = None if truncated else self._decode(data)
        tail = None if truncated else data[-TAIL:]
        if entry is None:  # not an envelope: a record of its own, which the parser reports as unparsed
            record = _Open(start, end, line, line + 1, 0, "", text=False, tail=tail, done=True)
            record.add(data, self._max)
            record.cut = truncated
            self._queue.append(record)
            return
        current = self._open.get(entry.stream)
        if current is not None and (current.partial or (current.text and not starts_record(entry.text))):
            if not current.partial:
                current.add(b"\n", self._max)
            current.add(entry.text, self._max)
            current.end, current.next_line, current.partial, current.tail = end, line + 1, entry.partial, tail
        else:
            if current is not None:
                current.done = True
            current = self._start(entry, start, end, line)
            current.tail = tail
        if not current.partial and not current.text:
            current.done = True
        if current.done:
            self._open.pop(entry.stream, None)

    def _start(self, entry: Entry, start: int, end: int, line: int) -> _Open:
        # Only a record begun by a LibreChat header takes the lines that follow (a Node warning is a line of its own).
        text = not entry.text.startswith(b"{") and starts_record(entry.text)
        record = _Open(start, end, line, line + 1, entry.time_ns, entry.stream, text=text, partial=entry.partial)
        record.add(entry.text, self._max)
        self._queue.append(record)
        self._open[entry.stream] = record
        return record

    def _release(self) -> list[Record]:
        out: list[Record] = []
        while self._queue and self._queue[0].done:
            record = self._queue.pop(0)
            if record.end > self._end:
                self._end, self._end_line, self._end_tail = record.end, record.next_line, record.tail
            data = b"".join(record.parts)
            if not record.cut:
                data += b"\n"
            out.append(
                ContainerRecord(
                    data,
                    record.start,
                    self._end,
                    record.line,
                    record.cut,
                    observed_ns=record.observed_ns,
                    stream=record.stream,
                    next_line=self._end_line,
                    tail=self._end_tail,
                )
            )
        return out
