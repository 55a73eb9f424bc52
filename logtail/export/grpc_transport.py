"""OTLP/gRPC transport. Imported only when export.protocol is grpc: the gRPC runtime costs 14 MiB of memory."""

from __future__ import annotations

import logging
from typing import Any, Final

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from logtail.config import ExportConfig
from logtail.export.transport import MESSAGE_CAP, REJECTED_FIELD, RESPONSES, Answer, Kind, Signal

log = logging.getLogger(__name__)

RETRYABLE_GRPC: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
METHODS: Final[dict[Signal, Any]] = {
    "logs": logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].methods_by_name["Export"],
    "metrics": metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].methods_by_name["Export"],
}


class GrpcTransport:
    """OTLP/gRPC unary Export calls. The request is already serialized, so it is passed through as bytes
    against the method paths of the official service descriptors; answers are decoded with the official
    response messages."""

    def __init__(self, export: ExportConfig, target: str, secure: bool, headers: dict[str, str]) -> None:
        compression = grpc.Compression.Gzip if export.compression == "gzip" else grpc.Compression.NoCompression
        # gRPC metadata keys must be lowercase.
        self._metadata = tuple((key.lower(), value) for key, value in headers.items())
        self._timeout = export.timeout
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", 16 << 20)]
        if secure:
            tls = export.tls
            if tls.insecure:
                log.warning(
                    "export.tls.insecure=true has no effect on gRPC: the channel verifies the server "
                    "certificate; give export.tls.ca_file for a private CA"
                )
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls.ca_file.read_bytes() if tls.ca_file else None,
                private_key=tls.key_file.read_bytes() if tls.key_file else None,
                certificate_chain=tls.cert_file.read_bytes() if tls.cert_file else None,
            )
            self._channel = grpc.secure_channel(target, credentials, options, compression)
        else:
            self._channel = grpc.insecure_channel(target, options, compression)
        self._calls = {
            signal: self._channel.unary_unary(
                f"/{method.containing_service.full_name}/{method.name}",
                request_serializer=None,
                response_deserializer=RESPONSES[signal].FromString,
            )
            for signal, method in METHODS.items()
        }

    def send(self, signal: Signal, body: bytes) -> Answer:
        try:
            response = self._calls[signal](body, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            details = (exc.details() if isinstance(exc, grpc.Call) else str(exc)) or ""
            kind: Kind = "retry" if code in RETRYABLE_GRPC else "refused"
            return Answer(kind, f"gRPC {code.name}", message=details[:MESSAGE_CAP])
        partial = response.partial_success
        return Answer("ok", "gRPC OK", int(getattr(partial, REJECTED_FIELD[signal])), partial.error_message)

    def close(self) -> None:
        self._channel.close()
