"""Find LibreChat log files on disk and put them in the order they were written.

Names (librechat-log-formats.md §3): `error-YYYY-MM-DD.log`, then size rotations `.log.1`, `.log.2`…,
each gzipped to `.gz` once closed; `login-logs.log` (v0.7) has no date and lives one directory above
`api/logs`. The rotator's hidden `.<hash>-audit.json` files are not logs.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import errno
import gzip
import hashlib
import io
import os
import re
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from logtail.source import containers

_DAILY: Final = re.compile(r"^(error|debug|meiliSync)-(\d{4}-\d\d-\d\d)\.log(?:\.(\d+))?(\.gz)?$")
_LOGIN: Final = re.compile(r"^login-logs\.log(?:\.(\d+))?(\.gz)?$")
_FAMILY_OF_PREFIX: Final = {"error": "error", "debug": "debug", "meiliSync": "meili"}
# Family by a word in an unconventional name (a file given explicitly, e.g. `old-debug.txt`).
_FAMILY_WORDS: Final = (("meili", "meili"), ("login", "login"), ("debug", "debug"), ("error", "error"))
_FAMILY_ORDER: Final = {"login": 0, "debug": 1, "error": 2, "meili": 3, "docker": 4, "cri": 4}
IDENTITY_LINE_CAP: Final = 4096
NOT_REGULAR: Final = "not a regular file"


class BadPath(OSError):
    """A path that cannot be read; the message names it."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LogFile:
    """One file on disk. `index` is the size-rotation number (0 for the base file)."""

    path: Path
    family: str
    date: dt.date | None
    index: int
    gz: bool

    @property
    def date_ns(self) -> int:
        """Midnight UTC of the file's date, the time of last resort for records without one (0 if undated)."""
        if self.date is None:
            return 0
        return calendar.timegm(self.date.timetuple()) * 1_000_000_000

    def sort_key(self) -> tuple[dt.date, int, int, int]:
        return (self.date or dt.date.min, _FAMILY_ORDER.get(self.family, 9), self.index, int(self.gz))


def family_of(name: str) -> str | None:
    """`error`, `debug`, `meili` or `login` for a LibreChat log file name; None for anything else."""
    daily = _DAILY.match(name)
    if daily:
        return _FAMILY_OF_PREFIX[daily.group(1)]
    if _LOGIN.match(name):
        return "login"
    return None


def log_file(path: Path, *, explicit: bool = False) -> LogFile | None:
    """The `LogFile` for a path, or None if its name is not a LibreChat log.

    A file named explicitly is taken whatever its name: the family is guessed from a word in the name,
    else from its first byte (`{` means JSON lines, which are most likely the error file).
    """
    name = path.name
    gz = name.endswith(".gz")
    daily = _DAILY.match(name)
    if daily:
        family = _FAMILY_OF_PREFIX[daily.group(1)]
        return LogFile(path, family, dt.date.fromisoformat(daily.group(2)), int(daily.group(3) or 0), gz)
    login = _LOGIN.match(name)
    if login:
        return LogFile(path, "login", None, int(login.group(1) or 0), gz)
    container = containers.classify(path)
    if container:
        return LogFile(path, container[0], None, container[1], container[2])
    if not explicit:
        return None
    lowered = name.lower()
    for word, family in _FAMILY_WORDS:
        if word in lowered:
            return LogFile(path, family, None, 0, gz)
    return LogFile(path, _sniff_family(path), None, 0, gz)


def _sniff_family(path: Path) -> str:
    try:
        with open_decompressed(path) as stream:
            head = stream.read(64).lstrip()
    except (OSError, EOFError):
        return "debug"
    return "error" if head.startswith(b"{") else "debug"


def discover(
    paths: Iterable[str | os.PathLike[str]],
    *,
    errors: list[BadPath] | None = None,
    select: str = containers.DEFAULT_SELECT,
) -> list[LogFile]:
    """Log files under `paths`, each path's files in the order they were written.

    Directories are searched recursively (v0.7 keeps `login-logs.log` above `api/logs`). When `errors` is
    given, an unreadable path (or a FIFO, socket or device named like a log file, whose open would block or
    never end) is appended to it and the other files are still searched; otherwise the first one raises
    `BadPath`. Under a directory, only the kubelet's containers whose names match `select` are taken.
    """
    out: list[LogFile] = []
    for given in paths:
        try:
            found, skipped = _discover_one(Path(given), select)
        except BadPath as exc:
            found, skipped = [], [exc]
        if skipped:
            if errors is None:
                raise skipped[0]
            errors.extend(skipped)
        out.extend(found)
    return out


def _discover_one(path: Path, select: str) -> tuple[list[LogFile], list[BadPath]]:
    """The log files under `path`, and those skipped because they are not regular files."""
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            raise BadPath(path, "directory not readable")
        found: list[LogFile] = []
        skipped: list[BadPath] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in files:
                if name.startswith("."):
                    continue
                item = log_file(Path(root) / name)
                if item is None or not containers.selected(item.path, item.family, select):
                    continue
                if not_regular(item.path):
                    skipped.append(BadPath(item.path, NOT_REGULAR))
                else:
                    found.append(item)
        return _dedupe(sorted(found, key=LogFile.sort_key)), skipped
    if not path.exists():
        raise BadPath(path, "no such file or directory")
    try:
        with open_decompressed(path):
            pass
    except OSError as exc:
        raise BadPath(path, exc.strerror or "not readable") from exc
    item = log_file(path, explicit=True)
    assert item is not None
    return [item], []


def _dedupe(files: list[LogFile]) -> list[LogFile]:
    """`x.log.1` beside `x.log.1.gz` (a rotation caught mid-compress) hold the same records: keep the plain one."""
    plain = {f.path for f in files if not f.gz}
    return [f for f in files if not (f.gz and f.path.with_name(f.path.name[:-3]) in plain)]


def not_regular(path: Path) -> bool:
    """Whether `path` exists but is no regular file (a FIFO, socket, device or directory); a missing or
    unreadable one is left to the open, which reports it."""
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def content_size(log_file: LogFile) -> int:
    """Decompressed size: a gzip member's trailer holds it (modulo 4 GiB, close enough for progress and lag)."""
    size = log_file.path.stat().st_size
    if not log_file.gz or size < 18:
        return size
    with log_file.path.open("rb") as raw:
        raw.seek(-4, os.SEEK_END)
        return int.from_bytes(raw.read(4), "little")


def open_decompressed(path: str | os.PathLike[str]) -> io.BufferedIOBase:
    """The file's bytes, gunzipped when the name ends with `.gz`. `read1` gives what is there without waiting
    for a full chunk, so the records before a damaged part of an archive are still read.

    Opened non-blocking and checked before use: a FIFO swapped in under a log file's name would block the
    open until someone writes to it (reads of a regular file never block anyway)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, NOT_REGULAR, os.fspath(path))
        raw = io.FileIO(fd, "rb")
        raw.name = os.fspath(path)
    except BaseException:
        os.close(fd)
        raise
    if not os.fspath(path).endswith(".gz"):
        return io.BufferedReader(raw)
    packed = Archive(filename=os.fspath(path), mode="rb", fileobj=raw)
    packed.myfileobj = raw  # closed with the archive, as when GzipFile opens the file itself
    return packed


@contextlib.contextmanager
def _damage_is_oserror() -> Iterator[None]:
    try:
        yield
    except zlib.error as exc:
        raise gzip.BadGzipFile(f"damaged archive ({exc})") from exc


class Archive(gzip.GzipFile):
    """A gzip file whose damaged deflate stream raises `gzip.BadGzipFile`, an OSError like a bad header or a
    truncation, instead of `zlib.error`: every reader handles one family of read errors."""

    def read(self, size: int | None = -1) -> bytes:
        with _damage_is_oserror():
            return super().read(size)

    def read1(self, size: int = -1) -> bytes:
        with _damage_is_oserror():
            return super().read1(size)

    def peek(self, n: int) -> bytes:
        with _damage_is_oserror():
            return super().peek(n)

    def readline(self, size: int | None = -1) -> bytes:
        with _damage_is_oserror():
            return super().readline(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with _damage_is_oserror():
            return super().seek(offset, whence)


def file_identity(name: str, first_line: bytes) -> str:
    """Identity of a log file's content: its name without `.gz` and its first line (capped).

    `debug-2025-11-24.log.1` and, after compression, `debug-2025-11-24.log.1.gz` get the same identity,
    so `log.record.uid` does not change when the live tailer's file is later replayed from the archive; a container
    log file keeps its live name through the runtime's rotations (`0.log.20251124-234548` is `0.log`).
    """
    base = os.path.basename(name)
    if base.endswith(".gz"):
        base = base[:-3]
    base = containers.identity_name(base)
    line = first_line.split(b"\n", 1)[0][:IDENTITY_LINE_CAP]
    return hashlib.blake2b(base.encode() + b"\0" + line, digest_size=16).hexdigest()
