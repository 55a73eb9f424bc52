"""A small OTLP/HTTP backend for the refusal cases a real collector never produces (503, 429, 400, partial
success), and a gRPC twin of it. It decodes every request with the official messages and keeps what it stored.
"""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from logtail.devcollector.collector import free_port


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    rejected: int = 0  # partial_success.rejected_log_records of a 200
    message: str = ""
    body: bytes | None = None  # sent as is instead of the OTLP answer (with headers naming its type)
    hang: bool = False  # take the request and never answer (until the stub stops)


# Decides the answer to one logs request from its records; called under the stub's lock.
Policy = Callable[[list[LogRecord]], Reply]


def records_of(request: ExportLogsServiceRequest) -> list[LogRecord]:
    return [r for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records]


def attribute(record: LogRecord, key: str) -> Any:
    for kv in record.attributes:
        if kv.key == key:
            return getattr(kv.value, kv.value.WhichOneof("value"))
    return None


@dataclass(slots=True)
class Seen:
    """One logs request as it arrived."""

    at: float
    path: str
    headers: dict[str, str]
    records: list[LogRecord]
    status: int


class Backend:
    """What both stubs share: the policy, every request seen and the records stored."""

    endpoint: str

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.requests: list[Seen] = []
        self.stored: list[LogRecord] = []  # records a real backend would now hold
        self.lock = threading.Lock()

    def handle(self, path: str, headers: dict[str, str], records: list[LogRecord]) -> Reply:
        with self.lock:
            reply = self.policy(records)
            self.requests.append(Seen(time.monotonic(), path, headers, records, reply.status))
            if reply.status == 200 and not reply.hang:  # a hung request is taken as lost
                self.stored += [r for r in records if not poisoned(r)] if reply.rejected else records
            return reply

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StubBackend(Backend):
    """OTLP/HTTP on a free loopback port: `policy` answers logs requests; metrics requests get `metrics_status`
    (their arrival times are kept in `metrics_requests`)."""

    def __init__(self, policy: Policy, tls: ssl.SSLContext | None = None, metrics_status: int = 200) -> None:
        super().__init__(policy)
        self.metrics_requests: list[float] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                headers = {key.lower(): value for key, value in self.headers.items()}
                if self.path.endswith("/v1/metrics"):
                    stub.metrics_requests.append(time.monotonic())
                    ok = metrics_status == 200
                    self._answer(metrics_status, {}, ExportMetricsServiceResponse().SerializeToString() if ok else b"")
                    return
                request = ExportLogsServiceRequest()
                if headers.get("content-type") == "application/json":
                    json_format.Parse(body, request)
                else:
                    request.ParseFromString(body)
                reply = stub.handle(self.path, headers, records_of(request))
                if reply.hang:
                    stub.stopping.wait()
                    return
                if reply.body is not None:
                    self._answer(reply.status, reply.headers, reply.body)
                    return
                response = ExportLogsServiceResponse(
                    partial_success=ExportLogsPartialSuccess(
                        rejected_log_records=reply.rejected, error_message=reply.message
                    )
                )
                data = response.SerializeToString() if reply.status == 200 else reply.message.encode()
                self._answer(reply.status, reply.headers, data)

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                if "Content-Type" not in headers:
                    self.send_header("Content-Type", "application/x-protobuf" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.stopping = threading.Event()  # releases the requests a `hang` reply holds
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.endpoint = f"{scheme}://localhost:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


POISON = "POISON"


def poisoned(record: LogRecord) -> bool:
    return POISON in record.body.string_value


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, stub: Backend) -> None:
        self.stub = stub

    def Export(self, request: ExportLogsServiceRequest, context: grpc.ServicerContext) -> ExportLogsServiceResponse:
        metadata = {key: value for key, value in context.invocation_metadata()}
        reply = self.stub.handle("grpc", metadata, records_of(request))
        if reply.status != 200:
            context.abort(GRPC_CODES[reply.status], reply.message)
        return ExportLogsServiceResponse(
            partial_success=ExportLogsPartialSuccess(rejected_log_records=reply.rejected, error_message=reply.message)
        )


# The HTTP status a policy answers, as the gRPC code a backend would send instead.
GRPC_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class GrpcStubBackend(Backend):
    """The same policies over OTLP/gRPC (logs only)."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self.grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(self), self.grpc_server)  # type: ignore[no-untyped-call]
        port = self.grpc_server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.grpc_server.start()

    def stop(self) -> None:
        self.grpc_server.stop(None)


def sequence(*replies: Reply) -> Policy:
    """Answers with `replies` in turn, then 200 for ever."""
    queue: Iterator[Reply] = iter(replies)
    return lambda records: next(queue, Reply())
