"""`logtail replay PATH...`: ship archived logs, oldest first, with acknowledged delivery (events.md §6).

Files are read in the order they were written (dates, then `.N` rotations, `.gz` transparently), processed
by the same pipeline as the service (correlation, twins, redaction, e-mail policy) and shipped through the
configured exporter, which retries up to a deadline and dead-letters what the backend refuses. After every
acknowledged batch the file's offset is saved in the replay's own checkpoint, so running the same command
again after an interruption continues where it stopped, without duplicates.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Annotated, Final

import typer

from logtail.commands.progress import Progress
from logtail.commands.replay_state import FileProgress, ReplayState, StateError, replay_key
from logtail.config import Config, ConfigError, ConfigOption, EndpointOption, ProtocolOption, SetOption, load_config
from logtail.export import ExportGaveUp, ShipSummary, build_sink, record_encoder
from logtail.export.sink import ShutdownInterrupted
from logtail.pipeline import Pipeline, Scrub
from logtail.service.selfmetrics import SelfMetrics
from logtail.source.containers import DEFAULT_SELECT
from logtail.source.files import (
    IDENTITY_LINE_CAP,
    BadPath,
    LogFile,
    content_size,
    discover,
    file_identity,
    open_decompressed,
)
from logtail.source.parse_workers import ParseWorkers, jobs_for
from logtail.source.read import READ_ERRORS, reason
from parsers.event import Event

EXIT_OK: Final = 0
EXIT_GAVE_UP: Final = 1
EXIT_BAD_INPUT: Final = 2  # bad configuration, bad --since/--until, unreadable path
DEFAULT_DEADLINE: Final = 120.0
BATCH: Final = 1024
NS: Final = 1_000_000_000
DAY: Final = 86400 * NS
_AGE: Final = re.compile(r"(\d+)\s*(s|m|min|h|d|w)", re.IGNORECASE)
_AGE_UNIT: Final = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

log = logging.getLogger(__name__)


# Time window ---------------------------------------------------------------------------------------------
def parse_time(text: str, now_ns: int) -> int:
    """Unix nanoseconds for an ISO date or time (UTC unless it names an offset) or an age such as `7d`,
    `12h`, `30m`. ValueError names what was given."""
    age = _AGE.fullmatch(text.strip())
    if age:
        return now_ns - int(age.group(1)) * _AGE_UNIT[age.group(2).lower()] * NS
    try:
        stamp = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date (2025-11-24), a time (2025-11-24T13:00Z) or an age (7d, 12h, 30m)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return calendar.timegm(stamp.utctimetuple()) * NS + stamp.microsecond * 1000


@dataclass(frozen=True, slots=True)
class Window:
    """Records with `since <= time < until` (either end open when None)."""

    since_ns: int | None = None
    until_ns: int | None = None

    @property
    def bounded(self) -> bool:
        return self.since_ns is not None or self.until_ns is not None

    def contains(self, time_ns: int) -> bool:
        after = self.since_ns is None or time_ns >= self.since_ns
        return after and (self.until_ns is None or time_ns < self.until_ns)

    def may_hold(self, log_file: LogFile) -> bool:
        """False only when the file's date puts every one of its records outside the window. The date is
        the writer's local day, so its records lie within that day ± 14 h of UTC: a day's margin is safe."""
        if log_file.date is None:
            return True
        first, last = log_file.date_ns - DAY, log_file.date_ns + 2 * DAY
        return (self.since_ns is None or last > self.since_ns) and (self.until_ns is None or first < self.until_ns)


# Files ---------------------------------------------------------------------------------------------------
def select_files(paths: list[Path], select: str = DEFAULT_SELECT) -> tuple[list[LogFile], list[BadPath]]:
    """Every log file under `paths`, each once, oldest first across all of them (the kubelet's containers whose
    names match `select`)."""
    errors: list[BadPath] = []
    found = discover(paths, errors=errors, select=select)
    unique = {os.path.realpath(f.path): f for f in reversed(found)}  # the first mention wins
    return sorted(unique.values(), key=LogFile.sort_key), errors


def identity_of(log_file: LogFile) -> str:
    """The identity the parser gives the file's records (and that keys its checkpoint)."""
    with open_decompressed(log_file.path) as stream:
        return file_identity(log_file.path.name, stream.readline(IDENTITY_LINE_CAP))


# Replay --------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class ReplayResult:
    files: int = 0
    replayed_before: int = 0  # files the checkpoint shows as shipped already
    read: int = 0  # records read in this run
    outside_window: int = 0
    problems: list[str] = field(default_factory=list)  # unreadable paths and files, one line each
    gave_up: str | None = None  # why the export did not succeed within the deadline
    stopped: bool = False  # stopped on request before the end
    state_error: str | None = None
    summary: ShipSummary = field(default_factory=ShipSummary)

    @property
    def complete(self) -> bool:
        return not (self.problems or self.gave_up or self.stopped or self.state_error)


Note = Callable[[str], None]
Ship = Callable[[list[Event]], None]


class Replay:
    """One replay of `files` into the destination `config.export`, resuming from `state`."""

    def __init__(
        self,
        config: Config,
        files: list[LogFile],
        state: ReplayState,
        *,
        window: Window,
        stop: threading.Event,
        deadline: float,
        dead_letters: Path,
        progress: Callable[[int], Progress] | None = None,
        note: Note = lambda _: None,
        jobs: int = 1,
    ) -> None:
        self.config = config
        self.jobs = jobs
        self.workers: ParseWorkers | None = None
        self.files = files
        self.state = state
        self.window = window
        self.stop = stop
        self.deadline = deadline
        self.dead_letters = dead_letters
        self.note = note
        self.self_metrics = SelfMetrics()
        # One pipeline per directory, i.e. per LibreChat instance: requests correlate only within one, and its
        # debug-file error records are twins (left out by the exporter) only when its error files are replayed too.
        with_errors = {f.path.parent for f in files if f.family == "error"}
        self.pipelines = {
            folder: Pipeline(config.privacy, error_family=folder in with_errors)
            for folder in {f.path.parent for f in files}
        }
        self.result = ReplayResult(files=len(files))
        self.sizes: dict[Path, int] = {}
        for log_file in files:
            try:
                self.sizes[log_file.path] = content_size(log_file)
            except OSError:
                self.sizes[log_file.path] = 0  # reported when the file is read
        self.progress = progress(sum(self.sizes.values())) if progress else None

    def run(self) -> ReplayResult:
        # The workers are forked before the transports exist: a gRPC channel does not survive a fork.
        with ParseWorkers(self.jobs, scrub=Scrub(self.config.privacy), encode=record_encoder(self.config)) as workers:
            self.workers = workers
            return self._run()

    def _run(self) -> ReplayResult:
        shipper = build_sink(
            self.config,
            self_metrics=self.self_metrics,
            stop=self.stop,
            retry_deadline=self.deadline,
            dead_letter_path=self.dead_letters,
        )
        result = self.result
        try:
            for log_file in self.files:
                if self.stop.is_set():
                    result.stopped = True
                    break
                self._file(log_file, shipper.ship)
        except ExportGaveUp as exc:
            result.gave_up = str(exc)
            self.stop.set()  # the endpoint is not answering: close without waiting for it again
        except ShutdownInterrupted:
            result.stopped = True
        finally:
            try:
                shipper.close()
            finally:
                result.summary = shipper.summary
                if self.progress:
                    self.progress.finish()
        return result

    def _skip(self, n_bytes: int) -> None:
        if self.progress:
            self.progress.skip(n_bytes)

    def _problem(self, line: str) -> None:
        self.result.problems.append(line)
        self.note(line)

    def _file(self, log_file: LogFile, ship: Ship) -> None:
        size = self.sizes[log_file.path]
        if not self.window.may_hold(log_file):
            self._skip(size)
            return
        try:
            identity = identity_of(log_file)
        except READ_ERRORS as exc:
            self._problem(f"{log_file.path}: {reason(exc)}")
            self._skip(size)
            return
        mark = self.state.progress(identity, log_file.path.name.removesuffix(".gz"))
        if mark.done or (not log_file.gz and mark.offset >= size):
            self.result.replayed_before += 1
            self._skip(size)
            return
        self._skip(mark.offset)
        whole = True
        for batch, read_error in self._batches(log_file, mark.offset):
            self._ship(batch, mark, log_file, ship)
            if read_error is not None:
                self._problem(f"{log_file.path}: {read_error} (records before the damage were shipped)")
                whole = False
            if self.stop.is_set():
                self.result.stopped = True
                return
        if whole and log_file.gz:
            mark.done = True  # an archive cannot grow: no need to decompress it again next time
            self._save()
        if self.progress:
            self.progress.advance(max(size - mark.offset, 0), 0, log_file.path.name)

    def _batches(self, log_file: LogFile, start: int) -> Iterator[tuple[list[Event], str | None]]:
        """Batches of events; the last one carries the reason the file could not be read to its end."""
        assert self.workers is not None
        batches = self.workers.batches(log_file, max_record=self.config.source.max_record_bytes, start=start)
        try:
            for batch in batches:
                yield batch, None
        except READ_ERRORS as exc:
            yield [], reason(exc)

    def _ship(self, batch: list[Event], mark: FileProgress, log_file: LogFile, ship: Ship) -> None:
        if not batch:
            return
        self.pipelines[log_file.path.parent].join(batch)  # scrubbed already by the parse workers
        self.result.read += len(batch)
        selected = batch
        if self.window.bounded:
            selected = [event for event in batch if self.window.contains(event.time_unix_nano)]
            self.result.outside_window += len(batch) - len(selected)
        ship(selected)
        end = batch[-1].end
        self.self_metrics.add_bytes(log_file.family, end - mark.offset)
        if self.progress:
            self.progress.advance(end - mark.offset, len(batch), log_file.path.name)
        mark.offset = end
        self._save()

    def _save(self) -> None:
        try:
            self.state.save()
        except OSError as exc:
            # Shipping goes on; only a resume after an interruption would send this part again.
            if self.result.state_error is None:
                self.note(f"cannot save the checkpoint {self.state.path}: {reason(exc)}")
            self.result.state_error = reason(exc)


# Command -------------------------------------------------------------------------------------------------
def default_state_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "logtail" / "replay.json"


def dead_letter_path(state: Path) -> Path:
    """Refused records are kept beside the checkpoint, where the user running the replay can write."""
    return state.with_name(f"{state.stem}-dead-letters.jsonl")


def format_summary(result: ReplayResult, dead_letters: Path, state: Path) -> str:
    s = result.summary
    lines = [f"{result.files} files: {result.read:,} records read, {s.acknowledged:,} acknowledged"]
    skipped = []
    if s.skipped:
        skipped.append(f"{s.skipped:,} debug-file twins of error-file records")
    if result.outside_window:
        skipped.append(f"{result.outside_window:,} outside --since/--until")
    if result.replayed_before:
        skipped.append(f"{result.replayed_before} files replayed before (checkpoint {state})")
    if skipped:
        lines.append("  not sent: " + ", ".join(skipped))
    if s.dead_lettered:
        lines.append(f"  dead letters: {s.dead_lettered:,} refused records written to {dead_letters}")
    if s.by_event_name:
        width = max(map(len, s.by_event_name))
        lines.append("  acknowledged by event name:")
        lines += [f"    {name:<{width}}  {n:>9,}" for name, n in sorted(s.by_event_name.items())]
    return "\n".join(lines)


def _stderr(line: str, *, clear: bool = False) -> None:
    """One line on stderr; `clear` first wipes the progress bar drawn on that terminal line."""
    sys.stderr.write(("\r\x1b[K" if clear else "") + f"logtail replay: {line}\n")


def replay_command(
    paths: Annotated[list[Path], typer.Argument(help="log files, directories or .gz archives", show_default=False)],
    endpoint: EndpointOption = None,
    protocol: ProtocolOption = None,
    since: Annotated[
        str | None, typer.Option(metavar="T", help="first record time: 2025-11-24, 2025-11-24T13:00Z or 7d")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="T", help="records before this time (exclusive), same forms")
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    state: Annotated[
        Path | None, typer.Option(help="checkpoint file (default: $XDG_STATE_HOME/logtail/replay.json)")
    ] = None,
    deadline: Annotated[
        float,
        typer.Option(min=0.1, metavar="SECONDS", help="give up when the endpoint keeps failing this many seconds"),
    ] = DEFAULT_DEADLINE,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1, metavar="N", help="processes that parse, this one included (default: one per CPU; 1 parses in place)"
        ),
    ] = None,
) -> None:
    """Ship archived logs, oldest first, and exit 0 only when every record was acknowledged or dead-lettered."""
    logging.basicConfig(format="logtail replay: %(message)s", level=logging.WARNING)
    now_ns = time.time_ns()
    try:
        window = Window(*(parse_time(t, now_ns) if t else None for t in (since, until)))
        if window.since_ns is not None and window.until_ns is not None and window.since_ns >= window.until_ns:
            raise ValueError(f"--since {since} is not before --until {until}")
    except ValueError as exc:
        _stderr(f"--since/--until: {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    # source.logs_dir is the service's (required) setting; a replay reads PATHs instead. The flags come last
    # so they beat --set too, and a bad --endpoint is reported under its own name.
    overrides = [f"source.logs_dir={paths[0]}", *(set_ or [])]
    overrides += [f"export.endpoint={endpoint}"] if endpoint else []
    overrides += [f"export.protocol={protocol.value}"] if protocol else []
    try:
        settings = load_config(config, overrides=overrides)
    except ConfigError as exc:
        for line in exc.problems:
            print(line.replace("(--set export.endpoint)", "(--endpoint)") if endpoint else line, file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    files, bad_paths = select_files(paths, settings.source.containers)
    for bad in bad_paths:
        _stderr(str(bad))
    if not files and not bad_paths:
        _stderr(f"no LibreChat log files in {', '.join(map(str, paths))}")
        raise typer.Exit(EXIT_BAD_INPUT)
    state_path = state or default_state_path()
    dead_letters = dead_letter_path(state_path)
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signals:  # asked twice: stop now; the checkpoint holds what was acknowledged
            raise SystemExit(128 + signum)
        signals.append(signum)
        # Set from another thread: Event.set takes a lock the interrupted main thread may be holding.
        threading.Thread(target=stop.set, daemon=True).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    tty = sys.stderr.isatty()
    try:
        key = replay_key(settings.export.endpoint, since, until)
        description = {"endpoint": settings.export.endpoint, "since": since, "until": until}
        with ReplayState(state_path, key, description) as checkpoint:
            replay = Replay(
                settings,
                files,
                checkpoint,
                window=window,
                stop=stop,
                deadline=deadline,
                dead_letters=dead_letters,
                progress=lambda total: Progress(total, sys.stderr, tty=tty),
                note=lambda line: _stderr(line, clear=tty),
                jobs=jobs_for(files, jobs),
            )
            result = replay.run()
    except StateError as exc:
        _stderr(str(exc))
        raise typer.Exit(EXIT_BAD_INPUT) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(format_summary(result, dead_letters, state_path))
    raise typer.Exit(_exit_code(result, signals, bad_paths, state_path))


def _exit_code(result: ReplayResult, signals: list[int], bad_paths: list[BadPath], state: Path) -> int:
    if signals and result.stopped:
        _stderr(f"interrupted; progress saved in {state}: the same command continues where this one stopped")
        return 128 + signals[0]
    if result.gave_up:
        _stderr(f"gave up: {result.gave_up}; the same command continues from the last acknowledged record")
        return EXIT_GAVE_UP
    if bad_paths or not result.complete:
        return EXIT_BAD_INPUT
    return EXIT_OK
