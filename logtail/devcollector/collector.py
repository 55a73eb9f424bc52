"""An embedded OTLP collector (rotel) for `make demo`, the tests and the benchmark.

rotel's wheel ships a real collector binary, `rotel-agent`, that accepts OTLP over gRPC and HTTP
(protobuf and JSON). Its Python processor hook (`hook.py`) writes every received log record
and metric point to a JSON-lines file, so callers can assert on exactly what arrived.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

_HOOK = Path(__file__).with_name("hook.py")
_PR_SET_PDEATHSIG = 1


def agent_binary() -> Path:
    spec = importlib.util.find_spec("rotel")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded collector needs the 'rotel' package (pip install 'logtail[test]')")
    return Path(next(iter(spec.submodule_search_locations))) / "rotel-agent"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port nobody listens on, chosen outside the kernel's ephemeral range.

    A port from `bind(0)` comes from the range the kernel also hands to outgoing connections, so
    between closing the probe and the collector binding it, any client socket may take it.
    """
    low, high = _ephemeral_range()
    candidates = range(10_000, low) if low > 11_000 else range(high + 1, 65_536)
    for _ in range(200):
        port = random.choice(candidates)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port found")


def _die_with_parent() -> None:
    # The collector must not outlive a test run that was killed with SIGKILL.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(slots=True)
class Counts:
    """What a count-only collector received: records, their body bytes, metric points, and per-record
    delays from the record's timestamp to its arrival (milliseconds -> records)."""

    records: int = 0
    bytes: int = 0
    points: int = 0
    delay_ms: Counter[int] = field(default_factory=Counter)


class _PortTaken(RuntimeError):
    """The agent could not bind one of its ports."""


class DevCollector:
    """A running rotel-agent on free loopback ports; use as a context manager.

    `count_only` makes the hook count what arrives (`counts()`) instead of writing every record, so a
    benchmark measures the sender, not the receiver.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        logs_http_path: str | None = None,
        metrics_http_path: str | None = None,
        *,
        count_only: bool = False,
    ) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="logtail-collector-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.out = self.workdir / "received.jsonl"
        self.grpc_port = free_port()
        self.http_port = free_port()
        self._paths = (logs_http_path, metrics_http_path)
        self._proc: subprocess.Popen[bytes] | None = None
        self._count_only = count_only
        self._started_once = False

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 20.0) -> DevCollector:
        """Start the agent; a first start whose port was taken meanwhile retries on fresh ports."""
        for attempt in range(5):
            try:
                return self._start(timeout)
            except _PortTaken:
                if self._started_once:
                    # A restart must keep its ports (clients know them): wait for the holder to go.
                    time.sleep(0.2 * (attempt + 1))
                else:
                    self.grpc_port, self.http_port = free_port(), free_port()
        return self._start(timeout)

    def _start(self, timeout: float) -> DevCollector:
        self.out.touch()
        cmd = [
            str(agent_binary()),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--exporter",
            "blackhole",
            "--otlp-with-logs-processor",
            str(_HOOK),
            "--otlp-with-metrics-processor",
            str(_HOOK),
        ]
        logs_path, metrics_path = self._paths
        if logs_path:
            cmd += ["--otlp-receiver-logs-http-path", logs_path]
        if metrics_path:
            cmd += ["--otlp-receiver-metrics-http-path", metrics_path]
        env = dict(os.environ, LOGTAIL_COLLECTOR_OUT=str(self.out), NO_COLOR="1")
        if self._count_only:
            env["LOGTAIL_COLLECTOR_COUNT"] = "1"
        log_path = self.workdir / "agent.log"
        with log_path.open("ab") as log:
            since = log.tell()
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                tail = log_path.read_bytes()[since:][-2000:].decode(errors="replace")
                if "Address already in use" in tail:
                    raise _PortTaken(tail)
                raise RuntimeError(f"rotel-agent exited: {tail}")
            if all(_accepts(port) for port in (self.grpc_port, self.http_port)):
                self._started_once = True
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("rotel-agent did not open its ports in time")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Take the collector away abruptly; `start` brings it back on the same ports.

        rotel answers a request before its hook has written the records, so records acknowledged just
        before a kill may never show in `logs()`: while a sender is busy, take the collector down with
        `stop`, which finishes what it accepted.
        """
        if self._proc:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def __enter__(self) -> DevCollector:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    # What arrived -------------------------------------------------------------------------------
    def received(self) -> list[dict[str, Any]]:
        data = self.out.read_bytes()
        rows = []
        # The hook may be mid-write: only whole lines count.
        for line in data[: data.rfind(b"\n") + 1].splitlines():
            row = orjson.loads(line)
            if row.get("signal") == "hook_error":
                raise AssertionError(f"collector hook failed: {row['error']}")
            rows.append(row)
        return rows

    def logs(self) -> list[dict[str, Any]]:
        return [r for r in self.received() if r["signal"] == "log"]

    def metrics(self) -> list[dict[str, Any]]:
        return [r for r in self.received() if r["signal"] == "metric"]

    def wait_for_logs(self, count: int, timeout: float = 30.0, settle: float = 0.3) -> list[dict[str, Any]]:
        """Wait until at least `count` records arrived, then a little longer to catch extras."""
        deadline = time.monotonic() + timeout
        logs = self.logs()
        while len(logs) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            logs = self.logs()
        time.sleep(settle)
        return self.logs()

    def counts(self) -> Counts:
        counts = Counts()
        for row in self.received():
            if row["signal"] == "log_count":
                counts.records += row["records"]
                counts.bytes += row["bytes"]
                counts.delay_ms.update({int(ms): n for ms, n in row["delay_ms"].items()})
            elif row["signal"] == "metric_count":
                counts.points += row["points"]
        return counts

    def clear(self) -> None:
        self.out.write_bytes(b"")


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False
