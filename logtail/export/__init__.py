"""OTLP export of events (logs) and of the metrics derived from them, with acknowledged delivery.

`build_sink` wires the configured profile, encoding and transport into a `Shipper` (logtail.export.sink.Sink).
"""

from __future__ import annotations

import logging
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from logtail.config import Config
from logtail.export.deadletters import DeadLetters
from logtail.export.encode import EncodeRecord, LogEncoder
from logtail.export.metrics import Aggregator, encode_json
from logtail.export.profiles import Destination, Endpoint, destination, resource_attributes
from logtail.export.shipper import ExportGaveUp, MetricExport, Shipper, ShipSummary
from logtail.export.transport import HttpTransport, Signal, Transport
from logtail.service.selfmetrics import SelfMetrics

__all__ = ["ExportGaveUp", "ShipSummary", "Shipper", "build_sink", "open_transports", "record_encoder"]

log = logging.getLogger(__name__)

DEAD_LETTER_NAME = "dead-letter.jsonl"


def _version() -> str:
    try:
        return version("logtail")
    except PackageNotFoundError:
        return "0"


def open_transports(config: Config, dest: Destination) -> dict[Signal, Transport]:
    """One transport per signal of `dest`; signals sharing an HTTP client or gRPC channel share the object."""
    export = config.export
    endpoints: dict[Signal, Endpoint] = {"logs": dest.logs}
    if dest.metrics is not None:
        endpoints["metrics"] = dest.metrics
    if export.protocol != "grpc":
        http = HttpTransport(export, {signal: e.url for signal, e in endpoints.items()}, dest.headers)
        return dict.fromkeys(endpoints, http)
    from logtail.export.grpc_transport import GrpcTransport  # here: the gRPC runtime only when it is used

    by_target: dict[tuple[str, bool], Transport] = {}
    transports: dict[Signal, Transport] = {}
    for signal, e in endpoints.items():
        key = (e.grpc_target, e.secure)
        if key not in by_target:
            by_target[key] = GrpcTransport(export, e.grpc_target, e.secure, dest.headers)
        transports[signal] = by_target[key]
    return transports


def _serialize(request: ExportMetricsServiceRequest) -> bytes:
    body: bytes = request.SerializeToString()
    return body


def _encoder(dest: Destination) -> LogEncoder:
    return LogEncoder(dest.resource, _version(), dest.attribute_map)


def record_encoder(config: Config) -> EncodeRecord | None:
    """What encodes one event's LogRecord for `config.export` ahead of shipping (parse workers); None for
    OTLP/JSON, which is encoded per batch."""
    return None if config.export.protocol == "http/json" else _encoder(destination(config)).record


def build_sink(
    config: Config,
    *,
    self_metrics: SelfMetrics,
    stop: threading.Event,
    retry_deadline: float | None = None,
    dead_letter_path: Path | None = None,
) -> Shipper:
    """The shipper for `config.export`. Dead letters go to `dead_letter_path`, by default
    `dead-letter.jsonl` in the state directory (created when the first record is refused), kept within
    `export.dead_letter_max_bytes` plus one predecessor."""
    dest = destination(config)
    for note in dest.notes:
        log.warning("%s", note)
    encoder = _encoder(dest)
    export = config.export
    metrics = None
    if dest.metrics is not None:
        metrics = MetricExport(
            # Metrics keep the whole resource even where the logs' resource is trimmed (loki).
            Aggregator(config.metrics, resource_attributes(config), _version()),
            encode_json if export.protocol == "http/json" else _serialize,
            config.metrics.interval,
        )
    return Shipper(
        transports=open_transports(config, dest),
        encode=encoder.json if export.protocol == "http/json" else encoder.protobuf,
        self_metrics=self_metrics,
        stop=stop,
        dead_letters=DeadLetters(
            dead_letter_path or config.source.state_dir / DEAD_LETTER_NAME, self_metrics, export.dead_letter_max_bytes
        ),
        batch_max_records=export.batch_max_records,
        batch_max_bytes=export.batch_max_bytes,
        metrics=metrics,
        ship_twins=export.ship_twins,
        retry_deadline=retry_deadline,
    )
