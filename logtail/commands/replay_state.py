"""The replay checkpoint: how far each file has been acknowledged, so an interrupted replay resumes.

One JSON file holds any number of replays, each keyed by where it ships to and its --since/--until window:
the offsets of one replay say nothing about another (a wider window, another backend). Inside a replay,
files are keyed by their identity (logtail.source.files.file_identity), so `x.log.1` and its later `x.log.1.gz`
share progress. Saved atomically (temp file, fsync, rename) with mode 0600; an exclusive lock keeps two
replays from writing the same file at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import orjson

FORMAT: Final = "logtail-replay"
VERSION: Final = 1


class StateError(Exception):
    """The checkpoint file cannot be used; the message names it and says why."""


@dataclass(slots=True)
class FileProgress:
    """`offset`: end of the last acknowledged record in the decompressed content. `done`: an archive
    (which cannot grow) read to its end."""

    name: str
    offset: int = 0
    done: bool = False


def replay_key(endpoint: str, since: str | None, until: str | None) -> str:
    """Which replay a set of offsets belongs to: the destination and the window as given."""
    text = "\0".join((endpoint, since or "", until or ""))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class ReplayState:
    """The offsets of one replay (`key`) inside the checkpoint file at `path`; use as a context manager,
    which holds the lock."""

    def __init__(self, path: Path, key: str, description: dict[str, str | None]) -> None:
        self.path = path
        self.key = key
        self.description = description
        self.files: dict[str, FileProgress] = {}
        self._others: dict[str, Any] = {}
        self._lock: IO[bytes] | None = None

    def __enter__(self) -> ReplayState:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock = open(self.path.with_name(self.path.name + ".lock"), "ab")  # held until __exit__
        except OSError as exc:
            raise StateError(f"{self.path}: cannot create the checkpoint file: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StateError(f"{self.path}: another replay is using this checkpoint file") from None
        self._load()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the checkpoint file: {exc.strerror or exc}") from None
        try:
            doc = orjson.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
                raise ValueError("not a logtail replay checkpoint file")
            replays = doc["replays"]
            mine = replays.pop(self.key, {"files": {}})
            self.files = {
                identity: FileProgress(str(row["name"]), int(row["offset"]), bool(row["done"]))
                for identity, row in mine["files"].items()
            }
            self._others = dict(replays)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Never overwrite what might be someone's progress: the operator decides.
            raise StateError(
                f"{self.path}: unusable checkpoint file ({exc}); move it away or pass another --state"
            ) from None

    def progress(self, identity: str, name: str) -> FileProgress:
        found = self.files.get(identity)
        if found is None:
            found = self.files[identity] = FileProgress(name)
        return found

    def save(self) -> None:
        """Write every replay's offsets durably; the old file stays whole until the new one is complete."""
        mine = {
            **self.description,
            "files": {
                identity: {"name": p.name, "offset": p.offset, "done": p.done} for identity, p in self.files.items()
            },
        }
        doc = {"format": FORMAT, "version": VERSION, "replays": {**self._others, self.key: mine}}
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
