"""The follow loop: scan, read, ship, commit, save; one thread, so a checkpoint never runs ahead of an ack.

Each round reads what the files hold (up to a batch), runs the pipeline, hands the events to the sink
and, once `Sink.ship` returned, advances the checkpoints of exactly those records and saves the state
file. Scans run when the watcher reports files created, deleted or moved, and every `scan_interval`
in case it missed something; between rounds the loop sleeps until the watcher or the poll interval
wakes it; a heartbeat thread tells systemd's watchdog the loop is alive. `stop()` ends the loop after
the batch in hand: what was read is shipped and committed, partial records stay unread and are read
whole after a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from logtail.config import SourceConfig
from logtail.export.sink import ShutdownInterrupted, Sink
from logtail.pipeline import Pipeline
from logtail.service.selfmetrics import SelfMetrics
from logtail.source import containers
from logtail.source.checkpoint import StateFile
from logtail.source.tracker import Tracker
from logtail.source.watcher import Watcher
from logtail.source.work import Work
from parsers.envelope import CONTAINER_FAMILIES

BATCH: Final = 2048
HEARTBEAT: Final = 1.0  # seconds between watchdog beats (the notifier sends at most one per half WatchdogSec)
STALL: Final = 30.0  # a loop that neither turned nor waited on the backend this long is stuck: beats stop

log = logging.getLogger("logtail.source")


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds. The defaults suit a service; tests shrink them."""

    poll_interval: float = 1.0  # read every file at least this often, events or not
    scan_interval: float = 10.0  # list the directories at least this often
    flush_after: float = 0.5  # hand out the last record of a file that stopped growing
    linger: float = 0.15  # after a small batch, let the next one fill up a little (fewer, larger requests)
    release_after: float = 30.0  # keep a file moved out of the directory open for late writes


def followed(source: SourceConfig) -> frozenset[str]:
    """The families followed: LibreChat's own files (`source.families`), or one kind of container log file."""
    kind = containers.detect(source.logs_dir) if source.kind == "auto" else source.kind
    return source.families.enabled() if kind == "files" else frozenset({kind})


class Tailer:
    def __init__(
        self,
        source: SourceConfig,
        sink: Sink,
        self_metrics: SelfMetrics,
        *,
        pipeline: Pipeline,
        timing: Timing = Timing(),
        request_records: int = 512,
        on_ready: Callable[[int], object] = lambda _files: None,
        on_beat: Callable[[], object] = lambda: None,
    ) -> None:
        self.sink = sink
        self.self_metrics = self_metrics
        self.pipeline = pipeline
        self.timing = timing
        self.request_records = request_records
        self.on_ready = on_ready
        self.on_beat = on_beat
        self.state = StateFile(source.state_dir, source.logs_dir)
        families = followed(source)
        self.tracker = Tracker(
            Path(source.logs_dir),
            None if families & CONTAINER_FAMILIES else source.login_log,
            families,
            self.state,
            start_at=source.start_at,
            max_record=source.max_record_bytes,
            flush_after=timing.flush_after,
            release_after=timing.release_after,
            self_metrics=self_metrics,
            select=source.containers,
            work=Work(pipeline.scrub),  # the readers parse and scrub; the pipeline's stateful half runs here
        )
        self.watcher = Watcher(self.tracker.watched_dirs())
        self._stopping = threading.Event()
        self._turned = time.monotonic()  # when the loop last went round
        self._shipping = False
        # Held by the heartbeat while it reads the tracker, which the loop leaves alone only while shipping.
        self._lent = threading.Lock()

    def stop(self) -> None:
        """Finish the batch in hand, commit it and return from `run`; safe from any thread."""
        self._stopping.set()
        self.watcher.wake.set()

    def _heartbeat(self) -> None:
        """Beats while the loop turns or waits on the backend (an outage is not a hang); a loop stuck anywhere
        else, such as a read on a dead network file system, stops them and systemd restarts the service.

        While the loop waits on the backend, the lag is updated from here: it grows with what LibreChat writes
        during an outage instead of freezing until the backend is back."""
        while not self._stopping.wait(HEARTBEAT):
            with self._lent:
                if self._shipping:
                    self._set_lag(self.tracker.lag_on_disk())
            if self._shipping or time.monotonic() - self._turned < self.timing.poll_interval + STALL:
                self.on_beat()

    def run(self) -> None:
        self.watcher.start()
        threading.Thread(target=self._heartbeat, name="logtail-heartbeat", daemon=True).start()
        try:
            now = time.monotonic()
            self.tracker.scan(now)
            last_scan = now
            self.state.save(self.tracker.checkpoints())
            self.on_ready(len(self.tracker.readers))
            while not self._stopping.is_set():
                now = time.monotonic()
                due = now - last_scan >= self.timing.scan_interval
                if self.watcher.take_rescan() or due or self.tracker.written_to_empty():
                    self.watcher.arm(self.tracker.watched_dirs() if self.tracker.container_kind else None)
                    self.tracker.scan(now)
                    last_scan = now
                read = self._round(now)
                self._turned = time.monotonic()
                if not read:
                    # A held record is handed out `flush_after` after its file stopped growing, not a poll later.
                    held = self.tracker.holding()
                    self.watcher.wait(
                        min(self.timing.poll_interval, self.timing.flush_after) if held else self.timing.poll_interval
                    )
                elif read < BATCH:
                    self._stopping.wait(self.timing.linger)
        except ShutdownInterrupted:
            log.warning("stopped before the last batch was acknowledged; it is read again at the next start")
        finally:
            self.watcher.stop()
            self.tracker.close()
            self.state.save(self.tracker.checkpoints())

    def _round(self, now: float) -> int:
        """One read-ship-commit; how many records were read."""
        items = self.tracker.read(BATCH, now)
        self._set_lag(self.tracker.lag())
        self.pipeline.join([item.event for item in items if item.event is not None])
        # Committed and saved request by request: a kill or a drain that runs out of time repeats one request.
        for start in range(0, max(len(items), 1), self.request_records):
            chunk = items[start : start + self.request_records]
            self._shipping = True
            try:
                self.sink.ship([item.event for item in chunk if item.event is not None])  # []: due metrics only
            finally:
                with self._lent:
                    self._shipping = False
            self.tracker.commit(chunk)
            if chunk:
                self.state.save(self.tracker.checkpoints())
        self.tracker.release()
        self.state.save(self.tracker.checkpoints())
        self._set_lag(self.tracker.lag())
        return len(items)

    def _set_lag(self, lag: dict[str, int]) -> None:
        for family, n in lag.items():
            self.self_metrics.set_lag(family, n)
