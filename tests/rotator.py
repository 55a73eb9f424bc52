"""Write and rotate log files the way LibreChat's winston-daily-rotate-file does (librechat-log-formats.md §3),
plus logrotate's copytruncate, for the tailer's tests.

`Rotator.write` appends one record to `<prefix>-DATE.log`; once the file has grown past `max_size` the
next write goes to `.log.1`, `.log.2`…, and the first write after `new_day` to the new date's file. With
`gzip` (LibreChat's `zippedArchive: true`) every file left behind is compressed to `<name>.gz` and then
unlinked, right after the rotation, exactly in that order.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Final

PREFIX: Final = {"error": "error", "debug": "debug", "meili": "meiliSync"}


class Rotator:
    def __init__(
        self,
        logs_dir: Path,
        family: str = "error",
        *,
        date: str = "2025-11-24",
        max_size: int = 20 << 20,
        gzip: bool = True,
    ) -> None:
        self.logs_dir = logs_dir
        self.family = family
        self.date = date
        self.max_size = max_size
        self.gzip = gzip
        self.index = 0
        self._next_date: str | None = None
        self._force = False
        self._stream: BinaryIO | None = None
        logs_dir.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        name = f"{PREFIX[self.family]}-{self.date}.log"
        return self.logs_dir / (f"{name}.{self.index}" if self.index else name)

    def write(self, data: bytes) -> Path:
        """Append one record (a single write, as Node's stream does) and return the file it went to."""
        if self._stream is None:
            self._stream = self.path.open("ab")
        elif self._next_date or self._force or self._stream.tell() > self.max_size:
            self._rotate()
        assert self._stream is not None
        self._stream.write(data)
        self._stream.flush()
        return self.path

    def new_day(self, date: str) -> None:
        """The next write starts `date`'s file (the rotator notices a date change only when it writes)."""
        self._next_date = date

    def rotate(self) -> None:
        """The next write goes to the next `.N` file, as if this one had passed maxSize."""
        self._force = True

    def _rotate(self) -> None:
        assert self._stream is not None
        old = Path(self._stream.name)
        self._stream.close()
        if self._next_date:
            self.date, self.index, self._next_date = self._next_date, 0, None
        else:
            self.index += 1
        self._force = False
        self._stream = self.path.open("ab")
        if self.gzip:
            gzip_and_unlink(old)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def gzip_and_unlink(path: Path) -> Path:
    """What `zippedArchive` does to a finished file: `<name>.gz` written, then the plain file removed."""
    packed = path.with_name(path.name + ".gz")
    with path.open("rb") as plain, gzip.open(packed, "wb") as out:
        shutil.copyfileobj(plain, out)
    os.unlink(path)
    return packed


def copytruncate(path: Path, copy: Path) -> None:
    """logrotate's copytruncate: copy the file, then truncate the original in place (the writer keeps it open)."""
    shutil.copyfile(path, copy)
    with path.open("r+b") as stream:
        stream.truncate(0)
