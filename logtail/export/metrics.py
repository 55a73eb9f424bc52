"""Metrics derived from events (events.md §4) and logtail's own counters, as OTLP metric requests.

Cumulative totals, aggregated here rather than with the SDK's meter: every point carries the time of the
records it counts (a replay of last week's files yields last week's points), only series that changed since
the last acknowledged export are sent again, and cardinality is bounded before anything is stored.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from logtail.config import MetricsConfig
from logtail.export.encode import SCOPE_NAME, key_values
from logtail.export.wire import INT64_MAX, INT64_MIN
from logtail.pipeline import TWIN
from logtail.service.selfmetrics import DURATION_BOUNDS, Snapshot
from parsers.event import Event

MODEL: Final = "gen_ai.request.model"
OTHER: Final = "other"
OVERFLOW: Final = (("otel.metric.overflow", True),)
# gen_ai.client.token.usage buckets recommended by the GenAI semantic conventions.
TOKEN_BOUNDS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
TOKEN_TYPES: Final = (
    ("gen_ai.usage.input_tokens", "input"),
    ("gen_ai.usage.output_tokens", "output"),
)
# librechat.tokens also counts cache reads and writes, which the semconv histogram has no token type for.
CACHE_TOKEN_TYPES: Final = (
    ("gen_ai.usage.cache_read.input_tokens", "cache_read"),
    ("gen_ai.usage.cache_creation.input_tokens", "cache_creation"),
)
MODEL_KEYS: Final = ("gen_ai.request.model", "gen_ai.provider.name")
SEARCH_KEYS: Final = ("librechat.search.phase", "librechat.search.collection")
_CUMULATIVE: Final = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE

AttrKey = tuple[tuple[str, Any], ...]
Labels = list[tuple[str, Any]]


@dataclass(frozen=True, slots=True)
class Instrument:
    name: str
    unit: str
    description: str
    kind: str  # "sum" | "histogram"
    monotonic: bool = True
    bounds: tuple[float, ...] = ()


INSTRUMENTS: Final = {
    i.name: i
    for i in (
        Instrument(
            "gen_ai.client.token.usage",
            "{token}",
            "Tokens used per LibreChat request",
            "histogram",
            bounds=TOKEN_BOUNDS,
        ),
        Instrument("librechat.tokens", "{token}", "Tokens used, by type, model and provider", "sum"),
        Instrument("librechat.credits", "{credit}", "Sum of balance transaction amounts", "sum", monotonic=False),
        Instrument("librechat.violations", "{violation}", "Violations, by type", "sum"),
        Instrument("librechat.bans", "{ban}", "Users or addresses banned", "sum"),
        Instrument("librechat.auth.logins", "{login}", "Login attempts, by outcome", "sum"),
        Instrument("librechat.errors", "{error}", "Error records, by source", "sum"),
        Instrument("librechat.search.documents", "{document}", "Search index documents, by sync phase", "sum"),
    )
}


@dataclass(slots=True)
class Series:
    """One cumulative point stream: its total so far and the times of the records it counts."""

    start_unix_nano: int
    time_unix_nano: int
    value: int | float = 0  # int while every value added is one (a plain `float` is a double under mypyc)
    count: int = 0
    buckets: list[int] = field(default_factory=list)


class Aggregator:
    """Cumulative metric series built from events; `request` holds what changed since the last acknowledgement."""

    def __init__(self, config: MetricsConfig, resource: Mapping[str, Any], scope_version: str) -> None:
        self._max_series = config.max_series
        self._max_models = config.max_models
        self._opt_in = tuple(config.allowed_attributes)
        self._series: dict[str, dict[AttrKey, Series]] = {name: {} for name in INSTRUMENTS}
        self._models: set[str] = set()
        self._dirty: set[tuple[str, AttrKey]] = set()
        self._resource = Resource(attributes=key_values(resource))
        self._self_resource = Resource(attributes=key_values({**resource, "service.name": SCOPE_NAME}))
        self._scope = InstrumentationScope(name=SCOPE_NAME, version=scope_version)
        self._handlers: dict[str, Callable[[Event, Labels], None]] = {
            "librechat.token.usage": self._tokens,
            "librechat.token.transaction": self._credits,
            "librechat.violation": self._by("librechat.violations", "librechat.violation.type"),
            "librechat.ban": self._by("librechat.bans"),
            "librechat.auth.login": self._by("librechat.auth.logins", "librechat.auth.outcome"),
        }

    # Aggregation ---------------------------------------------------------------------------------------
    def add(self, events: Iterable[Event]) -> None:
        """Counts `events` (debug-file twins excluded: their error-file originals are counted)."""
        handlers = self._handlers
        opt_in = self._opt_in
        for event in events:
            attributes = event.attributes
            if attributes.get(TWIN):
                continue
            extra: Labels = [(key, attributes[key]) for key in opt_in if key in attributes]
            handler = handlers.get(event.event_name)
            if handler is not None:
                handler(event, extra)
            source = attributes.get("librechat.error.source")
            if source is not None:
                self._record("librechat.errors", event, [("librechat.error.source", source), *extra], 1)
            documents = attributes.get("librechat.search.documents")
            if isinstance(documents, (int, float)) and not isinstance(documents, bool):
                labels = [(key, attributes[key]) for key in SEARCH_KEYS if key in attributes]
                self._record("librechat.search.documents", event, labels + extra, documents)

    def _by(self, name: str, *keys: str) -> Callable[[Event, Labels], None]:
        def count(event: Event, extra: Labels) -> None:
            labels = [(key, event.attributes[key]) for key in keys if key in event.attributes]
            self._record(name, event, labels + extra, 1)

        return count

    def _model_labels(self, attributes: Mapping[str, Any]) -> list[tuple[str, Any]]:
        labels = []
        for key in MODEL_KEYS:
            value = attributes.get(key)
            if value is None:
                continue
            if key == MODEL and value not in self._models:
                if len(self._models) < self._max_models:
                    self._models.add(value)
                else:
                    value = OTHER
            labels.append((key, value))
        return labels

    def _tokens(self, event: Event, extra: Labels) -> None:
        attributes = event.attributes
        labels = self._model_labels(attributes) + extra
        for key, token_type in TOKEN_TYPES:
            tokens = attributes.get(key)
            if isinstance(tokens, int) and not isinstance(tokens, bool):
                typed = [("gen_ai.token.type", token_type), *labels]
                self._record("gen_ai.client.token.usage", event, typed, tokens)
                self._record("librechat.tokens", event, typed, tokens)
        for key, token_type in CACHE_TOKEN_TYPES:
            tokens = attributes.get(key)
            if isinstance(tokens, int) and not isinstance(tokens, bool):
                self._record("librechat.tokens", event, [("gen_ai.token.type", token_type), *labels], tokens)

    def _credits(self, event: Event, extra: Labels) -> None:
        amount = event.attributes.get("librechat.credits")
        if isinstance(amount, (int, float)) and not isinstance(amount, bool):
            self._record("librechat.credits", event, self._model_labels(event.attributes) + extra, amount)

    def _record(self, name: str, event: Event, labels: Sequence[tuple[str, Any]], value: int | float) -> None:
        key: AttrKey = tuple(sorted((k, _label(v)) for k, v in labels))
        streams = self._series[name]
        series = streams.get(key)
        if series is None:
            if len(streams) >= self._max_series and key != OVERFLOW:
                self._record(name, event, OVERFLOW, value)
                return
            instrument = INSTRUMENTS[name]
            series = Series(event.time_unix_nano, event.time_unix_nano)
            if instrument.kind == "histogram":
                series.buckets = [0] * (len(instrument.bounds) + 1)
            streams[key] = series
        series.time_unix_nano = max(series.time_unix_nano, event.time_unix_nano)
        series.value += value
        series.count += 1
        if series.buckets:
            series.buckets[bisect.bisect_left(INSTRUMENTS[name].bounds, value)] += 1
        self._dirty.add((name, key))

    # Export --------------------------------------------------------------------------------------------
    def take(self) -> set[tuple[str, AttrKey]]:
        """The series changed since the last acknowledged export; `give_back` them if the export fails."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def give_back(self, taken: set[tuple[str, AttrKey]]) -> None:
        self._dirty |= taken

    def request(
        self, taken: set[tuple[str, AttrKey]], snapshot: Snapshot | None, now_unix_nano: int
    ) -> ExportMetricsServiceRequest:
        """Points of the `taken` series, plus logtail's own metrics from `snapshot` stamped `now`."""
        by_name: dict[str, list[AttrKey]] = {}
        for name, key in sorted(taken, key=lambda item: (item[0], repr(item[1]))):
            by_name.setdefault(name, []).append(key)
        metrics = [self._metric(INSTRUMENTS[name], keys) for name, keys in by_name.items()]
        resource_metrics = []
        if metrics:
            resource_metrics.append(
                ResourceMetrics(
                    resource=self._resource, scope_metrics=[ScopeMetrics(scope=self._scope, metrics=metrics)]
                )
            )
        if snapshot is not None:
            own = self_metrics(snapshot, now_unix_nano)
            resource_metrics.append(
                ResourceMetrics(
                    resource=self._self_resource, scope_metrics=[ScopeMetrics(scope=self._scope, metrics=own)]
                )
            )
        return ExportMetricsServiceRequest(resource_metrics=resource_metrics)

    def _metric(self, instrument: Instrument, keys: Sequence[AttrKey]) -> Metric:
        streams = self._series[instrument.name]
        if instrument.kind == "histogram":
            points = [
                HistogramDataPoint(
                    attributes=key_values(dict(key)),
                    start_time_unix_nano=s.start_unix_nano,
                    time_unix_nano=s.time_unix_nano,
                    count=s.count,
                    sum=float(s.value),
                    bucket_counts=s.buckets,
                    explicit_bounds=[float(b) for b in instrument.bounds],
                )
                for s, key in ((streams[key], key) for key in keys)
            ]
            return histogram(instrument, points)
        points_n = [
            number_point(dict(key), s.start_unix_nano, s.time_unix_nano, s.value)
            for s, key in ((streams[key], key) for key in keys)
        ]
        return cumulative_sum(instrument, points_n)


def _label(value: Any) -> str | int | float:
    """A label value from log content that is hashable and encodable: other types and text that is not
    valid Unicode (lone surrogates) become clean text, and integers beyond int64 their decimal text."""
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")
    if (isinstance(value, int) and INT64_MIN <= value <= INT64_MAX) or isinstance(value, float):
        return value
    return _label(str(value))


def number_point(attributes: Mapping[str, Any], start: int, time: int, value: int | float) -> NumberDataPoint:
    if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX:
        return NumberDataPoint(
            attributes=key_values(attributes), start_time_unix_nano=start, time_unix_nano=time, as_int=value
        )
    return NumberDataPoint(
        attributes=key_values(attributes), start_time_unix_nano=start, time_unix_nano=time, as_double=value
    )


def cumulative_sum(instrument: Instrument, points: Sequence[NumberDataPoint]) -> Metric:
    return Metric(
        name=instrument.name,
        unit=instrument.unit,
        description=instrument.description,
        sum=Sum(data_points=points, aggregation_temporality=_CUMULATIVE, is_monotonic=instrument.monotonic),
    )


def histogram(instrument: Instrument, points: Sequence[HistogramDataPoint]) -> Metric:
    return Metric(
        name=instrument.name,
        unit=instrument.unit,
        description=instrument.description,
        histogram=Histogram(data_points=points, aggregation_temporality=_CUMULATIVE),
    )


SELF_RECORDS: Final = Instrument("logtail.records", "{record}", "Records handled, by family and outcome", "sum")
SELF_BYTES: Final = Instrument("logtail.bytes.read", "By", "Bytes read from log files", "sum")
SELF_DURATION: Final = Instrument(
    "logtail.export.duration", "s", "Duration of export requests", "histogram", bounds=DURATION_BOUNDS
)


def self_metrics(snapshot: Snapshot, now: int) -> list[Metric]:
    """logtail's own counters (events.md §4), stamped with the wall clock: they describe logtail, not LibreChat."""
    start = snapshot.start_unix_nano
    metrics = [
        cumulative_sum(
            SELF_RECORDS,
            [
                number_point({"logtail.file.family": family, "logtail.outcome": outcome}, start, now, n)
                for (family, outcome), n in sorted(snapshot.records.items())
            ],
        ),
        cumulative_sum(
            SELF_BYTES,
            [number_point({"logtail.file.family": f}, start, now, n) for f, n in sorted(snapshot.bytes_read.items())],
        ),
        Metric(
            name="logtail.lag",
            unit="By",
            description="Bytes read or readable but not yet acknowledged, by family",
            gauge=Gauge(
                data_points=[
                    number_point({"logtail.file.family": f}, start, now, n) for f, n in sorted(snapshot.lag.items())
                ]
            ),
        ),
        histogram(
            SELF_DURATION,
            [
                HistogramDataPoint(
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    count=snapshot.export_count,
                    sum=snapshot.export_sum,
                    bucket_counts=list(snapshot.export_buckets),
                    explicit_bounds=list(DURATION_BOUNDS),
                )
            ],
        ),
    ]
    # A family that read nothing yet has no point; a metric without points is not sent.
    return [metric for metric in metrics if getattr(metric, metric.WhichOneof("data") or "sum").data_points]


def encode_json(request: ExportMetricsServiceRequest) -> bytes:
    """OTLP/JSON: camelCase names, enums as integers, 64-bit integers as strings (proto3 JSON mapping) except
    point values and counts: proto3 JSON allows numbers there too, and some receivers (rotel) read only those."""
    data = MessageToDict(request, use_integers_for_enums=True)
    for resource_metrics in data.get("resourceMetrics", ()):
        for scope_metrics in resource_metrics.get("scopeMetrics", ()):
            for metric in scope_metrics.get("metrics", ()):
                for kind in ("sum", "gauge", "histogram"):
                    for point in metric.get(kind, {}).get("dataPoints", ()):
                        if "asInt" in point:
                            point["asInt"] = int(point["asInt"])
                        if kind == "histogram":
                            point["count"] = int(point.get("count", 0))
                            point["bucketCounts"] = [int(n) for n in point.get("bucketCounts", ())]
    return orjson.dumps(data)
