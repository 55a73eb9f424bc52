"""The durable state file: how far each file has been acknowledged.

One JSON file per logs directory under the state directory, replaced atomically (temp file, fsync,
rename, directory fsync) with mode 0600. A file that cannot be read back, or that belongs to another
logs directory, is reported and moved aside rather than trusted; its files are then read from their
beginning (duplicates, never loss). Write failures (disk full, read-only directory) are reported and
the next save tries again: shipping goes on from the positions held in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from logtail.source.fingerprint import NO_MARKER, Fingerprint, Marker

FORMAT: Final = "logtail-checkpoints"
VERSION: Final = 1
# While saving keeps failing, say so again this often (seconds).
REPORT_EVERY: Final = 60.0

log = logging.getLogger("logtail.source")


@dataclass(slots=True)
class Checkpoint:
    """One file's acknowledged progress.

    `name` is the file's name when first seen, without `.gz` (it feeds the record uid); `path` is where
    it was last seen. `offset` is the end of the last acknowledged record in the decompressed content,
    `line` the line number there, `marker` the hash of the bytes just before `offset`. `done` means the
    file can never grow again (an archive, or a vanished file read to its end).
    """

    fingerprint: Fingerprint
    name: str
    path: str
    offset: int
    line: int = 1
    marker: Marker = NO_MARKER
    last_time_ns: int | None = None
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint.digest,
            "fingerprint_size": self.fingerprint.size,
            "name": self.name,
            "path": self.path,
            "offset": self.offset,
            "line": self.line,
            "marker": self.marker.digest,
            "marker_size": self.marker.size,
            "last_time_ns": self.last_time_ns,
            "done": self.done,
        }

    @classmethod
    def from_json(cls, row: Any) -> Checkpoint:
        if not isinstance(row, dict):
            raise ValueError("entry is not an object")
        last = row.get("last_time_ns")
        checkpoint = cls(
            fingerprint=Fingerprint(_int(row, "fingerprint_size"), _str(row, "fingerprint")),
            name=_str(row, "name"),
            path=_str(row, "path"),
            offset=_int(row, "offset"),
            line=_int(row, "line"),
            marker=Marker(_int(row, "marker_size"), _str(row, "marker")),
            last_time_ns=last if isinstance(last, int) else None,
            done=row.get("done") is True,
        )
        if checkpoint.offset < 0 or checkpoint.line < 1 or checkpoint.fingerprint.size < 1:
            raise ValueError("entry out of range")
        return checkpoint


def _int(row: dict[str, Any], key: str) -> int:
    value = row.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} is not an integer")
    return value


def _str(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def state_path(state_dir: Path, logs_dir: Path) -> Path:
    """`<state_dir>/<logs dir name>-<hash of its absolute path>.json`: one file per logs directory."""
    where = os.path.abspath(logs_dir)
    tag = hashlib.blake2b(where.encode(), digest_size=6).hexdigest()
    return state_dir / f"{Path(where).name or 'root'}-{tag}.json"


class StateFile:
    """Loads and saves the checkpoints of one logs directory."""

    def __init__(self, state_dir: Path, logs_dir: Path) -> None:
        self.path = state_path(state_dir, logs_dir)
        self.logs_dir = os.path.abspath(logs_dir)
        self._saved: bytes | None = None
        self._failing_since: float | None = None
        self._last_report = 0.0
        self.write_errors = 0

    def load(self) -> list[Checkpoint] | None:
        """The saved checkpoints; None when there is no state yet (a first start).

        A damaged or foreign file is moved aside and reported; the result is then an empty list: not a
        first start, so every file is read from its beginning rather than skipped.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("cannot read checkpoint file %s (%s); reading every file from its beginning", self.path, exc)
            return []
        try:
            return self._decode(data)
        except ValueError as exc:
            aside = self.path.with_name(f"{self.path.name}.bad-{time.strftime('%Y%m%dT%H%M%S')}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            log.error(
                "checkpoint file %s is unusable (%s); moved to %s, reading every file from its beginning",
                self.path,
                exc,
                aside.name,
            )
            return []

    def _decode(self, data: bytes) -> list[Checkpoint]:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("not a logtail checkpoint file")
        if doc.get("version") != VERSION:
            raise ValueError(f"unsupported version {doc.get('version')!r}")
        if doc.get("logs_dir") != self.logs_dir:
            raise ValueError(f"it belongs to logs directory {doc.get('logs_dir')!r}")
        files = doc.get("files")
        if not isinstance(files, list):
            raise ValueError("files is not a list")
        return [Checkpoint.from_json(row) for row in files]

    def save(self, checkpoints: list[Checkpoint]) -> bool:
        """Write the checkpoints durably; False (reported, retried on the next save) when it failed."""
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "logs_dir": self.logs_dir,
            "files": [c.to_json() for c in checkpoints],
        }
        data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        if data == self._saved:
            return True
        try:
            self._write(data)
        except OSError as exc:
            self._report(exc)
            return False
        if self._failing_since is not None:
            log.warning(
                "checkpoint file %s written again after %.0f s of failures",
                self.path,
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None
        self._saved = data
        return True

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _report(self, exc: OSError) -> None:
        self.write_errors += 1
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._last_report < REPORT_EVERY:
            return
        self._last_report = now
        log.error(
            "CANNOT WRITE CHECKPOINTS to %s: %s; shipping continues, positions are kept in memory and saved once "
            "writing works again (a restart before then re-sends what was shipped since the last save)",
            self.path,
            exc,
        )
