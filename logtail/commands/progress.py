"""Progress of a long replay: a redrawn bar on a terminal, a plain line now and then otherwise.

Progress is counted in decompressed bytes (known up front from the file sizes and gzip trailers), speed in
records per second. Bytes that were skipped (already replayed, outside the time window) move the bar but do
not count towards the speed, so the ETA stays honest after a resume.
"""

from __future__ import annotations

import shutil
import time
from typing import Final, TextIO

BAR_WIDTH: Final = 24
TTY_REDRAW: Final = 0.1  # seconds between redraws of the bar
PLAIN_EVERY: Final = 10.0  # seconds between plain progress lines


def duration(seconds: float) -> str:
    """`42 s`, `3 min 05 s`, `2 h 07 min`."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class Progress:
    def __init__(self, total_bytes: int, out: TextIO, *, tty: bool, every: float | None = None) -> None:
        self.total = max(total_bytes, 1)
        self.out = out
        self.tty = tty
        self.every = every if every is not None else (TTY_REDRAW if tty else PLAIN_EVERY)
        self.done_bytes = 0
        self.skipped_bytes = 0
        self.records = 0
        self.file = ""
        self.started = time.monotonic()
        self._shown = self.started

    def skip(self, n_bytes: int) -> None:
        self.skipped_bytes += n_bytes
        self.done_bytes += n_bytes

    def advance(self, n_bytes: int, records: int, file: str) -> None:
        self.done_bytes += n_bytes
        self.records += records
        self.file = file
        now = time.monotonic()
        if now - self._shown >= self.every:
            self._shown = now
            self._show(now)

    def finish(self) -> None:
        elapsed = time.monotonic() - self.started
        rate = self.records / elapsed if elapsed > 0 else 0.0
        end = f"{self.records:,} records in {elapsed:.1f} s ({rate:,.0f} records/s)"
        if self.tty:
            self.out.write(f"\r\x1b[Kreplay: {end}\n")
        else:
            self.out.write(f"replay: {self._percent():.0f}% {end}\n")
        self.out.flush()

    def _percent(self) -> float:
        return min(100.0, 100.0 * self.done_bytes / self.total)

    def _show(self, now: float) -> None:
        elapsed = now - self.started
        rate = self.records / elapsed if elapsed > 0 else 0.0
        shipped = self.done_bytes - self.skipped_bytes
        remaining = max(self.total - self.done_bytes, 0)
        eta = duration(remaining * elapsed / shipped) if shipped > 0 else "?"
        percent = self._percent()
        stats = f"{percent:3.0f}%  {self.records:,} records  {rate:,.0f} records/s  ETA {eta}"
        if not self.tty:
            self.out.write(f"replay: {stats}  {self.file}\n")
        else:
            filled = int(BAR_WIDTH * percent / 100)
            line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {stats}  {self.file}"
            width = shutil.get_terminal_size().columns - 1
            self.out.write(f"\r\x1b[K{line[:width]}")
        self.out.flush()
