"""Which files are followed: found by name, matched to readers and checkpoints by content.

A scan lists the logs directory (and the login log's), and for every LibreChat log file decides:
- a plain file whose inode an open reader holds is that reader's file (perhaps renamed); its first bytes
  and the bytes before the acknowledged offset must still be what was read, else it was truncated or
  overwritten and is read again from its start;
- a file whose first bytes match an open reader's is that reader's content under another name or inode:
  the `.gz` of a file being finished from its descriptor (ignored), a logrotate copy or an atomic rewrite
  (read on from where the original was, sharing its claim so no record is read twice);
- otherwise a saved checkpoint with the same fingerprint (and, for dated files, the same name: the
  rotator never renames them, and meiliSync files of different days can begin alike) says where to resume;
- otherwise the file is new: read from its start, except at the very first start with `start_at=end`.
Readers of files that disappeared (gzipped and unlinked, or moved out of the directory) are read to their
end from the open descriptor, then released and remembered as done so the archive is never read again.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path
from typing import Final

from logtail.service.selfmetrics import SelfMetrics
from logtail.source import containers
from logtail.source.checkpoint import Checkpoint, StateFile
from logtail.source.files import NOT_REGULAR, LogFile, content_size, log_file, open_decompressed
from logtail.source.fingerprint import FINGERPRINT_SIZE, NO_MARKER, Fingerprint, Marker
from logtail.source.read import READ_ERRORS
from logtail.source.reader import CHUNK, Item, Reader, Rewritten, marker_holds, open_reader
from logtail.source.work import Work

log = logging.getLogger("logtail.source")

UNREADABLE: Final = "unreadable_file"


Signature = tuple[int, int, int]  # inode, size, modification time: an archive differs when one of them does


def _signature(status: os.stat_result) -> Signature:
    return status.st_ino, status.st_size, status.st_mtime_ns


class Tracker:
    def __init__(
        self,
        logs_dir: Path,
        login_log: Path | None,
        families: frozenset[str],
        state: StateFile,
        *,
        start_at: str,
        max_record: int,
        flush_after: float,
        release_after: float,
        self_metrics: SelfMetrics,
        select: str = containers.DEFAULT_SELECT,
        work: Work | None = None,
    ) -> None:
        # Absolute, so a login log given relative to the logs directory is not listed twice under two spellings.
        self.logs_dir = Path(os.path.abspath(logs_dir))
        self.login_log = Path(os.path.abspath(login_log)) if login_log else None
        self.families = families
        # Container log files (`docker`, `cri`) sit one or two directories below the logs directory.
        self.container_kind = next((kind for kind in (containers.DOCKER, containers.CRI) if kind in families), None)
        self.select = select
        self.start_at = start_at
        self.max_record = max_record
        self.flush_after = flush_after
        self.release_after = release_after
        self.self_metrics = self_metrics
        self.work = work or Work()
        loaded = state.load()
        self.first_start = loaded is None
        self.stored: list[Checkpoint] = loaded or []  # checkpoints of files not open now
        self.readers: list[Reader] = []
        self.scans = 0
        self._problems: dict[Path, str] = {}  # path -> problem reported (once until it changes)
        self._archive_heads: dict[tuple[Path, int, int, int], bytes] = {}  # archives do not change: decompress once
        # Archives that could not be read, as they were when the attempt began: tried (and reported) again only
        # once they differ, i.e. a damaged archive costs one report and one decompression, not one a second.
        self._damaged: dict[Path, Signature] = {}
        self._reading: dict[Path, Signature] = {}  # archives being read, as they were when opened
        self._empty: list[Path] = []  # files the last scan found empty: no identity until written to

    # Scanning --------------------------------------------------------------------------------------------
    def watched_dirs(self) -> list[Path]:
        if self.container_kind is not None:
            return [self.logs_dir, *containers.container_dirs(self.logs_dir, self.container_kind, self.select)]
        dirs = [self.logs_dir]
        if self.login_log is not None and self.login_log.parent not in dirs:
            dirs.append(self.login_log.parent)
        return dirs

    def candidates(self, *, report: bool = True) -> tuple[list[LogFile], bool]:
        """Log files present now, oldest first; False when some directory could not be listed.

        Skipped, with one report: what is no regular file (a FIFO would block the open) and links that lead
        out of the logs directory (whoever writes there would get logtail's own files shipped).
        """
        found: dict[Path, LogFile] = {}
        clean = True
        allowed = self._link_targets()
        for directory in self.watched_dirs():
            try:
                names = os.listdir(directory)
            except OSError as exc:
                clean = False
                if report:
                    self._problem(directory, exc)
                continue
            login = self._login_pattern() if self.login_log and directory == self.login_log.parent else None
            for name in names:
                path = directory / name
                item = _login_file(path, login) if login else None
                if item is None and (directory == self.logs_dir or self.container_kind) and not name.startswith("."):
                    item = log_file(path)
                if item is None or item.family not in self.families:
                    continue
                if not containers.selected(path, item.family, self.select):
                    continue
                refused = _refusal(path, allowed)
                if refused is None:
                    found[path] = item
                elif report:
                    self._skip(path, refused)
        # `x.log.gz` beside `x.log` is a compression in progress: the plain file holds the same records.
        files = [f for f in found.values() if not (f.gz and f.path.with_name(f.path.name[:-3]) in found)]
        return sorted(files, key=LogFile.sort_key), clean

    def _link_targets(self) -> tuple[str, str | None]:
        """Where a symbolic link may lead: into the logs directory, or to the configured login log."""
        login = os.path.realpath(self.login_log) if self.login_log else None
        return os.path.join(os.path.realpath(self.logs_dir), ""), login

    def _login_pattern(self) -> re.Pattern[str]:
        assert self.login_log is not None
        return re.compile(rf"^{re.escape(self.login_log.name)}(?:\.(\d+))?(\.gz)?$")

    def scan(self, now: float) -> None:
        files, clean = self.candidates()
        by_inode = {reader.inode: reader for reader in self.readers if reader.inode}
        seen: set[int] = set()
        taken: set[int] = set()
        self._empty = []
        for item in files:
            try:
                status = item.path.stat()
                reader = by_inode.get((status.st_dev, status.st_ino)) if not item.gz else None
                if reader is not None:
                    seen.add(id(reader))
                    self._follow(reader, item, now)
                    continue
                if item.gz and self._unchanged_damage(item.path, status):
                    clean = False  # its checkpoint stays
                    continue
                head = self._head(item, status)
            except FileNotFoundError:
                continue  # gone since the listing
            except READ_ERRORS as exc:
                clean = False
                self._problem(item.path, exc, _signature(status) if item.gz else None)
                continue
            self._problems.pop(item.path, None)
            if head:
                self._place(item, head, status, now, seen, taken)
            else:  # an empty file has no identity yet; it is looked at again once written to
                self._empty.append(item.path)
        self._lost(seen, now)
        present = {item.path for item in files}
        self._archive_heads = {key: head for key, head in self._archive_heads.items() if key[0] in present}
        self._damaged = {path: sig for path, sig in self._damaged.items() if path in present}
        self._reading = {path: sig for path, sig in self._reading.items() if path in present}
        if clean:  # a checkpoint no file matches any more belongs to a file deleted for good (retention)
            self.stored = [checkpoint for checkpoint in self.stored if id(checkpoint) in taken]
        self.scans += 1

    def written_to_empty(self) -> bool:
        """Whether a file the last scan found empty has content now (or is gone): a scan is due.

        A write to it wakes the tailer like any write, but only a scan gives a new file a reader; without this,
        a file created empty (LibreChat creates each new file before its first write) would wait for the next
        periodic scan."""
        for path in self._empty:
            try:
                if path.stat().st_size:
                    return True
            except OSError:
                return True
        return False

    def _head(self, item: LogFile, status: os.stat_result) -> bytes:
        if not item.gz:
            return _head(item)
        key = (item.path, status.st_ino, status.st_size, status.st_mtime_ns)
        head = self._archive_heads.get(key)
        if head is None:
            head = self._archive_heads[key] = _head(item)
        return head

    def _place(
        self, item: LogFile, head: bytes, status: os.stat_result, now: float, seen: set[int], taken: set[int]
    ) -> None:
        name = item.path.name.removesuffix(".gz")
        twin = next((r for r in self.readers if _same_content(r.checkpoint, item, name, head)), None)
        if twin is not None:
            if not item.gz:
                # A copy of a followed file (copytruncate) or its replacement (an atomic rewrite with the same
                # beginning): go on from where the original is.
                copy = Checkpoint(twin.checkpoint.fingerprint, twin.checkpoint.name, str(item.path), 0)
                self._open(item, status, copy, now, resume=twin)
            elif twin.file.gz:
                seen.add(id(twin))  # the archive being read; the `.gz` of a plain file is finished from its descriptor
            return
        checkpoint = self._stored(item, name, head, taken)
        if checkpoint is None:
            checkpoint = self._new(item, name, head, status)
            if checkpoint.done:
                self.stored.append(checkpoint)
        taken.add(id(checkpoint))
        checkpoint.path = str(item.path)
        if checkpoint.done:
            return
        self.stored = [c for c in self.stored if c is not checkpoint]
        self._open(item, status, checkpoint, now)
        if self.readers and self.readers[-1].checkpoint is checkpoint:
            seen.add(id(self.readers[-1]))

    def _stored(self, item: LogFile, name: str, head: bytes, taken: set[int]) -> Checkpoint | None:
        matches = [
            c
            for c in self.stored
            if id(c) not in taken and c.fingerprint.matches(head) and (item.date is None or c.name == name)
        ]
        matches.sort(key=lambda c: (c.path != str(item.path), c.name != name))
        return matches[0] if matches else None

    def _new(self, item: LogFile, name: str, head: bytes, status: os.stat_result) -> Checkpoint:
        checkpoint = Checkpoint(Fingerprint.of(head), name, str(item.path), 0)
        if self.scans or not self.first_start or self.start_at != "end":
            return checkpoint  # files that appear while running (or while stopped) are read whole
        if item.gz:
            checkpoint.done = True
        else:
            checkpoint.offset, checkpoint.line = _last_line_end(item.path, status.st_size)
            tail = _pread(item.path, 32, max(checkpoint.offset - 32, 0))[: checkpoint.offset]
            checkpoint.marker = Marker.of(tail)
        return checkpoint

    def _open(
        self, item: LogFile, status: os.stat_result, checkpoint: Checkpoint, now: float, *, resume: Reader | None = None
    ) -> None:
        signature = _signature(status) if item.gz else None
        try:
            if resume is not None:
                checkpoint.offset, checkpoint.line = resume.checkpoint.offset, resume.checkpoint.line
                checkpoint.marker, checkpoint.last_time_ns = resume.checkpoint.marker, resume.checkpoint.last_time_ns
            reader = open_reader(item, checkpoint, max_record=self.max_record, now=now, work=self.work)
        except READ_ERRORS as exc:
            self._problem(item.path, exc, signature)
            self.stored.append(checkpoint)
            return
        if signature is not None:
            self._reading[item.path] = signature
        if resume is not None:
            reader.claim = resume.claim
        # Archives come by the thousand after a long stop and are read at once: one line each only when debugging.
        log.log(logging.DEBUG if item.gz else logging.INFO, "following %s from byte %d", item.path, reader.position)
        self.readers.append(reader)

    def _follow(self, reader: Reader, item: LogFile, now: float) -> None:
        """A plain file found by inode: note a rename, and start over if it was truncated or overwritten."""
        if reader.file.path != item.path:
            log.info("%s was renamed to %s", reader.file.path, item.path)
            reader.file = item
            reader.checkpoint.path = str(item.path)
        reader.lost_since = None
        head = reader.head(FINGERPRINT_SIZE)
        checkpoint = reader.checkpoint
        if (
            reader.size() < reader.position
            or not checkpoint.fingerprint.matches(head)
            or not marker_holds(reader.opened(), checkpoint, gz=False)
        ):
            self._restart(reader, now)
        elif len(head) > checkpoint.fingerprint.size:
            checkpoint.fingerprint = Fingerprint.of(head)

    def _restart(self, reader: Reader, now: float) -> None:
        log.warning("%s was truncated or overwritten; reading it from the beginning", reader.file.path)
        old = reader.restart(now)
        if old.fingerprint.size:
            self.stored.append(old)  # a copy of the old content (copytruncate) resumes from it

    def _lost(self, seen: set[int], now: float) -> None:
        for reader in self.readers:
            if id(reader) in seen:
                continue
            if reader.lost_since is None:
                reader.lost_since = now
                log.info("%s moved away or was deleted; reading what is left", reader.file.path)

    # Reading ---------------------------------------------------------------------------------------------
    def read(self, limit: int, now: float) -> list[Item]:
        """Up to about `limit` records from the files, oldest file first."""
        items: list[Item] = []
        for reader in sorted(self.readers, key=lambda r: r.file.sort_key()):
            while len(items) < limit and not reader.finished:
                try:
                    got, n = reader.read(CHUNK)
                except Rewritten:
                    self._restart(reader, now)
                    continue
                except READ_ERRORS as exc:
                    path = reader.file.path
                    self._problem(path, exc, self._reading.get(path) if reader.file.gz else None)
                    self._drop(reader)
                    break
                items += got
                if n:
                    reader.last_data = now
                    self.self_metrics.add_bytes(reader.file.family, n)
                    continue
                items += self._at_end(reader, now)
                break
        return items

    def _at_end(self, reader: Reader, now: float) -> list[Item]:
        if reader.file.gz:
            return reader.finish()
        if reader.size() < reader.position:
            self._restart(reader, now)
            return []
        # Unlinked (gzipped by the rotator): it cannot grow. Moved away: it may, for a while.
        if reader.unlinked or (reader.lost_since is not None and now - reader.lost_since >= self.release_after):
            return reader.finish()
        if reader.splitter.pending and now - reader.last_data >= self.flush_after:
            return reader.flush(final=False)
        return []

    def holding(self) -> bool:
        """Whether some file's last record waits for more bytes or for `flush_after`."""
        return any(reader.splitter.pending for reader in self.readers)

    def release(self) -> None:
        """Close the readers read to their end whose records are committed; their files are done."""
        for reader in [r for r in self.readers if r.finished]:
            reader.checkpoint.done = True
            self._drop(reader)
            log.log(logging.DEBUG if reader.file.gz else logging.INFO, "finished %s", reader.file.path)

    def _drop(self, reader: Reader) -> None:
        reader.close()
        self.readers.remove(reader)
        self.stored.append(reader.checkpoint)

    @staticmethod
    def commit(items: list[Item]) -> None:
        """Advance checkpoints to the end of records whose request the sink acknowledged."""
        moved: set[int] = set()
        for item in reversed(items):  # each checkpoint moves to its last record; one marker hashed per file
            checkpoint = item.checkpoint
            if id(checkpoint) in moved or item.end <= checkpoint.offset:
                continue
            moved.add(id(checkpoint))
            checkpoint.offset, checkpoint.line = item.end, item.line
            checkpoint.marker = NO_MARKER if item.tail is None else Marker.of(item.tail)
            if item.event is not None:
                checkpoint.last_time_ns = item.event.time_unix_nano

    def checkpoints(self) -> list[Checkpoint]:
        live = [r.checkpoint for r in self.readers if r.checkpoint.fingerprint.size]
        return live + self.stored

    def lag(self) -> dict[str, int]:
        """Bytes on disk not yet acknowledged, by family (what an archive still holds is not known)."""
        lag = dict.fromkeys(self.families, 0)
        for reader in self.readers:
            try:
                lag[reader.file.family] += max(reader.size() - reader.checkpoint.offset, 0)
            except OSError:
                continue
        return lag

    def lag_on_disk(self) -> dict[str, int]:
        """`lag`, plus the files no scan has seen yet: while `Sink.ship` blocks, no scan runs and LibreChat goes on
        writing, rotating and gzipping. Plain files count by size, archives by their gzip trailer; stats only."""
        lag = self.lag()
        known = {reader.checkpoint.name for reader in self.readers} | {checkpoint.name for checkpoint in self.stored}
        held = {reader.inode for reader in self.readers}
        for item in self.candidates(report=False)[0]:
            if item.path.name.removesuffix(".gz") in known:
                continue
            try:
                if item.gz:
                    lag[item.family] += content_size(item)
                    continue
                status = item.path.stat()
                if (status.st_dev, status.st_ino) not in held:
                    lag[item.family] += status.st_size
            except OSError:
                continue
        return lag

    def close(self) -> None:
        for reader in self.readers:
            reader.close()

    def _problem(self, path: Path, exc: BaseException, archive: Signature | None = None) -> None:
        """`archive`: the archive's signature before the failed read; it is read again once it differs."""
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        if archive is None:
            self._skip(path, reason, "cannot read %s: %s (retrying; other files keep flowing)")
            return
        self._damaged[path] = archive
        self._skip(path, reason, "cannot read %s: %s (read again if it changes; other files keep flowing)")

    def _unchanged_damage(self, path: Path, status: os.stat_result) -> bool:
        """Whether `path` is an archive that failed to read and has not changed since; one that changed is
        forgotten as damaged, so a new failure is reported again."""
        before = self._damaged.get(path)
        if before is None:
            return False
        if before == _signature(status):
            return True
        del self._damaged[path]
        self._problems.pop(path, None)
        return False

    def _skip(self, path: Path, reason: str, message: str = "skipping %s: %s") -> None:
        """Counted each time, logged once until the reason changes."""
        self.self_metrics.count_error(UNREADABLE)
        if self._problems.get(path) != reason:
            self._problems[path] = reason
            log.error(message, path, reason)


def _same_content(checkpoint: Checkpoint, item: LogFile, name: str, head: bytes) -> bool:
    fingerprint = checkpoint.fingerprint
    return bool(fingerprint.size) and fingerprint.matches(head) and (item.date is None or checkpoint.name == name)


def _refusal(path: Path, allowed: tuple[str, str | None]) -> str | None:
    """Why `path` is not followed (None: it is): not a regular file, or a link out of the logs directory."""
    try:
        status = path.lstat()
        if stat.S_ISLNK(status.st_mode):
            target = os.path.realpath(path)
            inside, login = allowed
            if not target.startswith(inside) and target != login:
                return f"a symbolic link to {target}, outside the logs directory"
            status = path.stat()
    except OSError:
        return None  # gone, or a dangling link: the scan's own stat and open tell
    return None if stat.S_ISREG(status.st_mode) else NOT_REGULAR


def _login_file(path: Path, pattern: re.Pattern[str]) -> LogFile | None:
    match = pattern.match(path.name)
    if match is None:
        return None
    return LogFile(path, "login", None, int(match.group(1) or 0), bool(match.group(2)))


def _head(item: LogFile) -> bytes:
    with open_decompressed(item.path) as stream:
        return stream.read(FINGERPRINT_SIZE)


def _pread(path: Path, n: int, offset: int) -> bytes:
    with path.open("rb") as stream:
        return os.pread(stream.fileno(), n, offset)


def _last_line_end(path: Path, size: int) -> tuple[int, int]:
    """(offset just after the last newline within `size`, line number there): where `start_at=end` begins."""
    end, lines, base = 0, 1, 0
    with path.open("rb") as stream:
        while base < size:
            chunk = stream.read(min(CHUNK, size - base))
            if not chunk:
                break
            newlines = chunk.count(b"\n")
            if newlines:
                lines += newlines
                end = base + chunk.rfind(b"\n") + 1
            base += len(chunk)
    return end, lines
