"""Optional local health endpoint: `/healthz` (JSON) and `/metrics` (Prometheus text) from `SelfMetrics`.

For operators without a collector, or a load balancer / monitoring probe next to the service. Standard library
only (a daemon thread running `ThreadingHTTPServer`); it binds loopback unless `[self] health_address` says
otherwise, and serves nothing but the counters (no log content).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

import orjson

from logtail.config import host_port
from logtail.service.selfmetrics import DURATION_BOUNDS, SelfMetrics, Snapshot

# No acknowledgement for this long while bytes wait to be shipped: the export is stuck (backend down, refused).
STALL_SECONDS: Final = 300.0
PROMETHEUS_TEXT: Final = "text/plain; version=0.0.4; charset=utf-8"


class HealthServer:
    """A running health endpoint; `close()` stops it and releases the port."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def health(snapshot: Snapshot, now: float, stall_after: float = STALL_SECONDS) -> tuple[int, dict[str, object]]:
    """HTTP status and `/healthz` document.

    Stalled (503): bytes wait (lag, or read with never an acknowledgement) and nothing was acknowledged for
    `stall_after`. Degraded (200): dead letters, or bytes waiting unacknowledged for a fifth of that. Read
    problems are reported but change nothing: a file that vanished is not logtail's fault.
    """
    # Before the first acknowledgement, the wait is counted from the start of the process.
    since = snapshot.last_ack_unix if snapshot.last_ack_unix is not None else snapshot.start_unix_nano / 1e9
    waited = max(now - since, 0.0)
    never_acked = snapshot.last_ack_unix is None and any(snapshot.bytes_read.values())
    waiting = never_acked or any(n > 0 for n in snapshot.lag.values())
    stalled = waiting and waited > stall_after
    degraded = snapshot.dead_letters > 0 or (waiting and waited > stall_after / 5)
    body: dict[str, object] = {
        "status": "degraded" if stalled or degraded else "ok",
        "stalled": stalled,
        "lag_bytes": dict(sorted(snapshot.lag.items())),
        "seconds_since_last_ack": None if snapshot.last_ack_unix is None else round(waited, 3),
        "dead_letters": snapshot.dead_letters,
        "dead_letters_dropped": snapshot.dead_letters_dropped,
        "errors": dict(sorted(snapshot.errors.items())),
    }
    return (HTTPStatus.SERVICE_UNAVAILABLE if stalled else HTTPStatus.OK), body


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in pairs)
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, str, float]]) -> Iterator[str]:
    """One metric family: HELP, TYPE and a line per (suffix, labels, value)."""
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} {kind}"
    for suffix, labels, value in samples:
        yield f"{name}{suffix}{labels} {_number(value)}"


def _number(value: float) -> str:
    return str(value) if isinstance(value, float) and not value.is_integer() else str(int(value))


def prometheus_text(snapshot: Snapshot) -> str:
    """The self-metrics of events.md §4 in the Prometheus text exposition format (version 0.0.4)."""
    records = (
        ("", _labels((("family", family), ("outcome", outcome))), n)
        for (family, outcome), n in sorted(snapshot.records.items())
    )
    read = (("", _labels((("family", family),)), n) for family, n in sorted(snapshot.bytes_read.items()))
    lag = (("", _labels((("family", family),)), n) for family, n in sorted(snapshot.lag.items()))
    cumulative = 0
    buckets: list[tuple[str, str, float]] = []
    for bound, count in zip((*DURATION_BOUNDS, float("inf")), snapshot.export_buckets, strict=True):
        cumulative += count
        buckets.append(("_bucket", _labels((("le", "+Inf" if bound == float("inf") else repr(bound)),)), cumulative))
    buckets += [("_sum", "", snapshot.export_sum), ("_count", "", snapshot.export_count)]
    errors = (("", _labels((("kind", kind),)), n) for kind, n in sorted(snapshot.errors.items()))
    lines = [
        *_family("logtail_records_total", "counter", "Records handled, by family and outcome.", records),
        *_family("logtail_bytes_read_total", "counter", "Bytes read from log files.", read),
        *_family("logtail_lag_bytes", "gauge", "Bytes read or readable but not yet acknowledged.", lag),
        *_family("logtail_export_duration_seconds", "histogram", "Duration of export requests.", buckets),
        *_family(
            "logtail_dead_letters_total",
            "counter",
            "Records written to the dead-letter file.",
            [("", "", snapshot.dead_letters)],
        ),
        *_family(
            "logtail_dead_letters_dropped_total",
            "counter",
            "Dead letters removed from disk by the dead-letter file's size cap.",
            [("", "", snapshot.dead_letters_dropped)],
        ),
        *_family("logtail_errors_total", "counter", "Problems met, by kind (unreadable file, ...).", errors),
    ]
    return "\n".join(lines) + "\n"


def start_health_server(address: str, metrics: SelfMetrics, *, stall_after: float = STALL_SECONDS) -> HealthServer:
    """Serve `/healthz` and `/metrics` on `address` (`host:port`, literal IP) from a daemon thread."""
    host, port = host_port(address)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            snapshot = metrics.snapshot()
            if path == "/healthz":
                status, document = health(snapshot, time.time(), stall_after)
                self._send(status, "application/json", orjson.dumps(document))
            elif path == "/metrics":
                self._send(HTTPStatus.OK, PROMETHEUS_TEXT, prometheus_text(snapshot).encode())
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds would flood the journal: requests are not logged."""

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True

    try:
        server = Server((host, port), Handler)
    except OSError as exc:  # port taken, address not on this host: say which setting to change
        raise OSError(exc.errno, f"self.health_address {address}: {exc.strerror or exc}") from None
    # A short poll interval lets close() return quickly.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="logtail-health", daemon=True
    )
    thread.start()
    return HealthServer(server, thread)
