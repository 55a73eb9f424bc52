"""Transports: one OTLP export request out, one classified answer back. No retries here (the shipper owns them).

`Transport.send(signal, body)` takes an already serialized request (protobuf, or OTLP/JSON for http/json) so
bisecting and retrying never re-encode more than needed, and tests may swap a transport for another. The gRPC
transport lives in `grpc_transport` and is imported only when configured: the gRPC runtime alone is 14 MiB.
"""

from __future__ import annotations

import email.utils
import gzip
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import httpx
import orjson
from google.protobuf.message import DecodeError
from google.rpc import status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from logtail.config import ExportConfig, TlsConfig

log = logging.getLogger(__name__)

Signal = Literal["logs", "metrics"]
# ok: taken (maybe with `rejected` records refused); retry: try the same request again later;
# refused: this request will never be taken as it is (the shipper bisects it).
Kind = Literal["ok", "retry", "refused"]

GZIP_LEVEL: Final = 1  # on OTLP log bodies: 3 % larger than level 3, a third faster (3.2 vs 4.3 µs a record)
RETRYABLE_HTTP: Final = frozenset({429, 502, 503, 504})
# Answers about the connection or credentials, not the content: bisecting would dead-letter every record,
# so they are retried (and reported) until the operator fixes the configuration or the backend.
NOT_ABOUT_CONTENT_HTTP: Final = frozenset({401, 403, 404, 405, 407, 408})
RESPONSES: Final[dict[Signal, Any]] = {
    "logs": logs_service_pb2.ExportLogsServiceResponse,
    "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
}
REJECTED_FIELD: Final = {"logs": "rejected_log_records", "metrics": "rejected_data_points"}
_REJECTED_JSON: Final = {"logs": "rejectedLogRecords", "metrics": "rejectedDataPoints"}
MESSAGE_CAP: Final = 300


@dataclass(frozen=True, slots=True)
class Answer:
    kind: Kind
    status: str  # "HTTP 200", "gRPC UNAVAILABLE", "connection error"
    rejected: int = 0
    message: str = ""
    retry_after: float | None = None  # seconds the server asked us to wait

    def __str__(self) -> str:
        return f"{self.status}: {self.message}" if self.message else self.status


class Transport(Protocol):
    def send(self, signal: Signal, body: bytes) -> Answer: ...

    def close(self) -> None: ...


def ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """System CAs unless a CA file is given; a client certificate when configured."""
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure:
        log.warning(
            "TLS CERTIFICATE VERIFICATION IS OFF (export.tls.insecure=true): anyone on the path can read and "
            "alter the exported logs; use export.tls.ca_file instead"
        )
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _partial(signal: Signal, data: bytes, content_type: str) -> tuple[int, str] | None:
    """(rejected, error_message) from a 2xx export response body; (0, "") when there is none; None when the body
    is not an OTLP response: a web page, or protobuf or JSON that does not decode. Other body types (text/plain
    from a gateway) say nothing either way and count as success."""
    if not data:
        return 0, ""
    try:
        if content_type.startswith("application/json"):
            document = orjson.loads(data)
            if not isinstance(document, dict):
                return None
            partial = document.get("partialSuccess") or {}
            return int(partial.get(_REJECTED_JSON[signal]) or 0), str(partial.get("errorMessage") or "")
        if content_type.startswith("application/x-protobuf"):
            response = RESPONSES[signal].FromString(data)
            partial_pb = response.partial_success
            return int(getattr(partial_pb, REJECTED_FIELD[signal])), partial_pb.error_message
    except (orjson.JSONDecodeError, DecodeError, AttributeError, ValueError, TypeError):
        return None
    return None if content_type.startswith("text/html") else (0, "")


def _error_text(response: httpx.Response) -> str:
    """The server's reason for a refusal: google.rpc.Status (protobuf or JSON) or the start of the body."""
    data = response.content
    if response.headers.get("content-type", "").startswith("application/x-protobuf"):
        try:
            return str(status_pb2.Status.FromString(data).message)[:MESSAGE_CAP]
        except DecodeError:
            pass
    with_json = response.headers.get("content-type", "").startswith("application/json")
    if with_json:
        try:
            message = orjson.loads(data).get("message")
            if message:
                return str(message)[:MESSAGE_CAP]
        except (orjson.JSONDecodeError, AttributeError):
            pass
    return data[:MESSAGE_CAP].decode("utf-8", "replace").strip()


class HttpTransport:
    """OTLP/HTTP with protobuf or JSON bodies, over one pooled httpx client."""

    def __init__(self, export: ExportConfig, urls: dict[Signal, str], headers: dict[str, str]) -> None:
        self._json = export.protocol == "http/json"
        self._gzip = export.compression == "gzip"
        self._urls = urls
        self._headers = {
            **headers,
            "Content-Type": "application/json" if self._json else "application/x-protobuf",
            **({"Content-Encoding": "gzip"} if self._gzip else {}),
        }
        https = any(url.startswith("https:") for url in urls.values())
        # Plain HTTP needs no CA certificates: loading the system's costs 1 MiB for nothing.
        self._client = httpx.Client(verify=ssl_context(export.tls) if https else False, timeout=export.timeout)

    def send(self, signal: Signal, body: bytes) -> Answer:
        content = gzip.compress(body, GZIP_LEVEL, mtime=0) if self._gzip else body
        try:
            response = self._client.post(self._urls[signal], content=content, headers=self._headers)
        except httpx.TimeoutException as exc:
            return Answer("retry", "timeout", message=type(exc).__name__)
        except httpx.TransportError as exc:
            return Answer("retry", "connection error", message=f"{type(exc).__name__}: {exc}"[:MESSAGE_CAP])
        status = f"HTTP {response.status_code}"
        if response.is_success:
            content_type = response.headers.get("content-type", "")
            partial = _partial(signal, response.content, content_type)
            if partial is None:
                # Whatever answered is not an OTLP receiver (a proxy's or a web UI's page): nothing says the
                # records were stored, so they are not acknowledged.
                reason = f"a {content_type or 'untyped'} body that is not an OTLP response; is export.endpoint right?"
                return Answer("retry", status, message=reason)
            return Answer("ok", status, *partial)
        wait = retry_after(response.headers.get("retry-after"))
        if response.status_code in RETRYABLE_HTTP or response.status_code in NOT_ABOUT_CONTENT_HTTP:
            return Answer("retry", status, message=_error_text(response), retry_after=wait)
        return Answer("refused", status, message=_error_text(response))

    def close(self) -> None:
        self._client.close()
