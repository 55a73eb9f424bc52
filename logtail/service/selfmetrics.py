"""logtail's own counters, shared by the source, the exporter, the health endpoint and the metric export.

Writers (reader threads, the shipper) and readers (health endpoint, metric export) run on different
threads, so every change and every snapshot holds one lock; each call does a few dictionary updates.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

OUTCOMES: Final = ("exported", "skipped", "unparsed", "dead_lettered")
# Upper bounds (seconds) of the `logtail.export.duration` histogram buckets.
DURATION_BOUNDS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A consistent copy of the counters at one moment."""

    start_unix_nano: int
    records: dict[tuple[str, str], int]  # (family, outcome) -> records
    bytes_read: dict[str, int]  # family -> bytes
    lag: dict[str, int]  # family -> bytes read or readable but not yet acknowledged
    export_count: int
    export_sum: float
    export_buckets: tuple[int, ...]  # len(DURATION_BOUNDS) + 1 counts
    dead_letters: int
    last_ack_unix: float | None
    errors: dict[str, int] = field(default_factory=dict)  # problem kind -> occurrences (unreadable file, …)
    dead_letters_dropped: int = 0  # dead letters removed from disk by the dead-letter file's size cap


class SelfMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start_unix_nano = time.time_ns()
        self._records: Counter[tuple[str, str]] = Counter()
        self._bytes: Counter[str] = Counter()
        self._lag: dict[str, int] = {}
        self._export_count = 0
        self._export_sum = 0.0
        self._export_buckets = [0] * (len(DURATION_BOUNDS) + 1)
        self._dead_letters = 0
        self._dead_letters_dropped = 0
        self._last_ack: float | None = None
        self._errors: Counter[str] = Counter()

    def count_records(self, family: str, outcome: str, n: int = 1) -> None:
        with self._lock:
            self._records[family, outcome] += n
            if outcome == "dead_lettered":
                self._dead_letters += n

    def drop_dead_letters(self, n: int) -> None:
        """`n` dead letters were removed from disk to keep the dead-letter file within its cap."""
        with self._lock:
            self._dead_letters_dropped += n

    def add_bytes(self, family: str, n: int) -> None:
        with self._lock:
            self._bytes[family] += n

    def set_lag(self, family: str, n: int) -> None:
        with self._lock:
            self._lag[family] = n

    def count_error(self, kind: str) -> None:
        with self._lock:
            self._errors[kind] += 1

    def observe_export(self, seconds: float, *, acked: bool) -> None:
        """One export call took `seconds`; `acked` when the backend took the whole batch."""
        with self._lock:
            self._export_count += 1
            self._export_sum += seconds
            self._export_buckets[_bucket(seconds)] += 1
            if acked:
                self._last_ack = time.time()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                start_unix_nano=self._start_unix_nano,
                records=dict(self._records),
                bytes_read=dict(self._bytes),
                lag=dict(self._lag),
                export_count=self._export_count,
                export_sum=self._export_sum,
                export_buckets=tuple(self._export_buckets),
                dead_letters=self._dead_letters,
                last_ack_unix=self._last_ack,
                errors=dict(self._errors),
                dead_letters_dropped=self._dead_letters_dropped,
            )


def _bucket(seconds: float) -> int:
    for i, bound in enumerate(DURATION_BOUNDS):
        if seconds <= bound:
            return i
    return len(DURATION_BOUNDS)
