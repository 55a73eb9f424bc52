"""logtail's own log lines on stderr, plain or JSON (`[self] log_format`), shaped for journald.

When stderr is the journal (systemd sets $JOURNAL_STREAM to its device:inode), every line starts with a
syslog priority prefix such as `<4>`: journald strips it and files the line at that priority, so
`journalctl -p warning -u logtail` works. journald adds its own time stamp, so the plain format leaves it
out there; JSON lines always carry one for whoever ships them further.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Final, Literal, TextIO

import orjson

from parsers.event import iso_from_nanos

# Attributes every LogRecord has; anything else came in through `extra=` and goes into JSON lines.
_STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def syslog_priority(levelno: int) -> int:
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class JournalFormatter(logging.Formatter):
    def __init__(self, log_format: Literal["plain", "json"], *, journal: bool) -> None:
        super().__init__()
        self.json = log_format == "json"
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if self.json:
            fields: dict[str, object] = {
                "time": iso_from_nanos(int(record.created * 1e9)),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message,
            }
            fields.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD)
            if record.exc_info:
                fields["exception"] = self.formatException(record.exc_info)
            line = orjson.dumps(fields, default=str).decode()
        else:
            if record.exc_info:
                message = f"{message}\n{self.formatException(record.exc_info)}"
            line = f"{record.levelname.lower()} {record.name}: {message}"
            if not self.journal:
                line = f"{iso_from_nanos(int(record.created * 1e9))} {line}"
        return f"<{syslog_priority(record.levelno)}>{line}" if self.journal else line


def stderr_is_journal(env: Mapping[str, str] | None = None, stream: TextIO | None = None) -> bool:
    """True when systemd connected this stream to journald (systemd.exec(5), $JOURNAL_STREAM)."""
    env = os.environ if env is None else env
    device, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not device.isdigit() or not inode.isdigit():
        return False
    try:
        status = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError):
        return False
    return (status.st_dev, status.st_ino) == (int(device), int(inode))


def configure_logging(
    log_format: Literal["plain", "json"],
    level: str,
    *,
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Route the `logtail` loggers to stderr in the chosen format; call once at service start."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter(log_format, journal=stderr_is_journal(env, stream)))
    root = logging.getLogger("logtail")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
