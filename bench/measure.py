"""Run a shipper as a child process and measure it from outside: wall time, CPU, memory over time.

CPU and memory are read from /proc for the child and its descendants (a parse-ahead worker counts too).
Memory is the proportional set size (PSS): a forked worker shares most of its pages with its parent, and
adding up RSS would count those twice. `os.wait4` gives the exact CPU total at exit.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_POLL = 0.02  # how soon an exit is noticed


@dataclass(slots=True)
class Usage:
    """One sample of a process tree: CPU seconds so far and resident bytes now."""

    cpu: float
    by_process: list[int]  # PSS bytes of each process, the child first

    @property
    def rss(self) -> int:
        """The tree's PSS in bytes (named for what it replaces: RSS would count shared pages twice)."""
        return sum(self.by_process)


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (threads' children included)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                todo.extend(int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split())
        except OSError:
            continue
    return out


def usage(pid: int) -> Usage:
    cpu, by_process = 0.0, []
    for member in tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
            rollup = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        cpu += (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        pss = next((line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")), "0")
        by_process.append(int(pss) * 1024)
    return Usage(cpu, by_process)


@dataclass(slots=True)
class Run:
    seconds: float = 0.0
    cpu: float = 0.0  # seconds of CPU, user + system, children included
    peak_rss: int = 0
    peak_by_process: list[int] = field(default_factory=list)  # each process's PSS when the tree's peaked
    returncode: int | None = None
    rss_series: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes)
    stderr: str = ""


class Child:
    """A measured child process; `sample()` while it runs, `finish()` to stop it (or wait for it)."""

    def __init__(self, cmd: Sequence[str], *, env: dict[str, str] | None = None, log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT, env=env)
        self.run = Run()

    def sample(self) -> Usage:
        now = usage(self.proc.pid)
        if now.rss > self.run.peak_rss:
            self.run.peak_rss, self.run.peak_by_process = now.rss, now.by_process
        self.run.rss_series.append((time.monotonic() - self.started, now.rss))
        return now

    def wait(self, *, every: float = 0.25, timeout: float = 3600.0, until: Callable[[], bool] | None = None) -> bool:
        """Sample every `every` seconds until the child exits (or `until()` holds); False on timeout."""
        deadline = time.monotonic() + timeout
        next_sample = time.monotonic()
        while self.run.returncode is None and time.monotonic() < deadline:
            pid, status, rusage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self._exited(status, rusage)
                return True
            if time.monotonic() >= next_sample:
                self.sample()
                next_sample += every
                if until is not None and until():
                    return True
            time.sleep(_POLL)
        return self.run.returncode is not None

    def finish(self, sig: signal.Signals = signal.SIGTERM, grace: float = 15.0) -> Run:
        """Stop the child with `sig` (if it still runs) and collect its totals."""
        if self.run.returncode is None:
            self.sample()
            os.kill(self.proc.pid, sig)  # not Popen.send_signal: its poll() would reap the child before wait4
            if not self.wait(every=0.1, timeout=grace):
                self.proc.kill()
                self.wait(every=0.1)
        self._log_file.close()
        self.run.stderr = self.log.read_text(errors="replace")[-2000:]
        return self.run

    def _exited(self, status: int, rusage: resource.struct_rusage) -> None:
        self.run.seconds = time.monotonic() - self.started
        self.run.cpu = rusage.ru_utime + rusage.ru_stime
        self.run.returncode = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.run.returncode
