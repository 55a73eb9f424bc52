"""Metrics derived from events (events.md §4) and logtail's own counters, as OTLP metric requests.

Cumulative totals, aggregated here rather than with the SDK's meter: every point carries the time of the
records it counts (a replay of last week's files yields last week's points), only series that changed since
the last acknowledged export are sent again, and cardinality is bounded before anything is stored.
When records move to another UTC hour, the totals reached before are kept as points of their own, so an export
covering many hours of records (a replay) still lets a backend tell each hour's and day's increase.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from logtail.export.users import HOUR_NS, ActiveUsers
from logtail.export.wire import INT64_MAX, INT64_MIN
from logtail.pipeline import TWIN
from logtail.pipeline.correlate import DURATION, MESSAGE
from logtail.service.selfmetrics import DURATION_BOUNDS, Snapshot
from parsers.event import Event
from parsers.moderation import ABORTED, VIOLATION
from parsers.tokens import USAGE

MODEL: Final = "gen_ai.request.model"
# Label sets whose series key is remembered: the same few come back on every record.
KEYS_KEPT: Final = 4096
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
ENDPOINT: Final = "librechat.endpoint"
OUTCOME: Final = "librechat.request.outcome"
USERS: Final = "librechat.users.active"
USERS_WINDOW: Final = "librechat.users.window"
_WINDOW_START: Final = "start"  # part of a users series key, not an attribute: the point's start time says it
# Transaction parts -> gen_ai.token.type, for librechat.cost.
COST_PARTS: Final = (("librechat.token.prompt", "input"), ("librechat.token.completion", "output"))
# gen_ai.client.operation.duration buckets recommended by the GenAI semantic conventions, in seconds.
RESPONSE_BOUNDS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
SEARCH_KEYS: Final = ("librechat.search.phase", "librechat.search.collection")
MAX_SEALED: Final = 100_000  # hourly totals kept between two exports
# Hourly totals that make the next export due before its interval: a replay seals thousands of hours in seconds, and
# one request of all of them took 28 MiB of protobuf messages for 26 000 points.
EXPORT_SEALED: Final = 2_000
_CUMULATIVE: Final = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE

AttrKey = tuple[tuple[str, Any], ...]
Labels = list[tuple[str, Any]]


@dataclass(frozen=True, slots=True)
class Instrument:
    name: str
    unit: str
    description: str
    kind: str  # "sum" | "histogram" | "gauge"
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
        Instrument("librechat.requests", "{request}", "Model responses, by model, provider and endpoint", "sum"),
        Instrument(
            "librechat.requests.completed",
            "{request}",
            "Requests ended, by outcome (completed, aborted, error, insufficient_balance) and endpoint",
            "sum",
        ),
        Instrument(
            "librechat.cost",
            "USD",
            "Spent token credits in US dollars, by model and token type",
            "sum",
            monotonic=False,
        ),
        Instrument(
            "librechat.request.duration",
            "s",
            "From the balance check before a model call to the token spend after it (an estimate from log times)",
            "histogram",
            bounds=RESPONSE_BOUNDS,
        ),
        Instrument(USERS, "{user}", "Distinct users seen in the UTC day or hour of the point's start time", "gauge"),
    )
}


def outcome(event: Event) -> str | None:
    """How a request ended, for the record that says so (librechat.requests.completed); None for other records.

    A model response (token usage of context `message`) completed; an abort, a stream error or a
    `token_balance` violation ended its request otherwise. The partial response of an abort is logged as usage
    of context `incomplete` and is not a completion."""
    name = event.event_name
    attributes = event.attributes
    if name == USAGE:
        return "completed" if attributes.get("librechat.token.context") == MESSAGE else None
    if name == ABORTED:
        return "aborted"
    if name == VIOLATION:
        return "insufficient_balance" if attributes.get("librechat.violation.type") == "token_balance" else None
    if name == "librechat.error" and attributes.get("librechat.error.source") == "stream":
        return "error"
    return None


@dataclass(slots=True)
class Series:
    """One cumulative point stream: its total so far and the times of the records it counts."""

    start_unix_nano: int
    time_unix_nano: int
    value: int | float = 0  # int while every value added is one (a plain `float` is a double under mypyc)
    count: int = 0
    buckets: list[int] = field(default_factory=list)


SeriesId = tuple[str, AttrKey]


@dataclass(slots=True)
class Taken:
    """What one export sends: the series changed since the last one and the hourly totals kept meanwhile."""

    series: set[SeriesId] = field(default_factory=set)
    sealed: list[tuple[SeriesId, Series]] = field(default_factory=list)


class Aggregator:
    """Cumulative metric series built from events; `request` holds what changed since the last acknowledgement."""

    def __init__(self, config: MetricsConfig, resource: Mapping[str, Any], scope_version: str) -> None:
        self._max_series = config.max_series
        self._max_models = config.max_models
        self._credits_per_usd = config.credits_per_usd
        self._users = ActiveUsers()
        self._opt_in = tuple(config.allowed_attributes)
        self._series: dict[str, dict[AttrKey, Series]] = {name: {} for name in INSTRUMENTS}
        self._keys: dict[tuple[tuple[str, Any], ...], AttrKey] = {}  # labels as given -> their series key
        self._models: set[str] = set()
        self._dirty: set[SeriesId] = set()
        self._sealed: list[tuple[SeriesId, Series]] = []  # totals at the end of an hour, oldest first
        self._since_seal: set[SeriesId] = set()
        self._hour = -HOUR_NS  # start of the UTC hour of the latest record
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
            if not 0 <= event.time_unix_nano - self._hour < HOUR_NS:
                self._seal(event.time_unix_nano)
            attributes = event.attributes
            if attributes.get(TWIN):
                continue
            user = attributes.get("user.id")
            if isinstance(user, str):
                self._users.add(user, event.time_unix_nano)
            extra: Labels = [(key, attributes[key]) for key in opt_in if key in attributes]
            handler = handlers.get(event.event_name)
            if handler is not None:
                handler(event, extra)
            ended = outcome(event)
            if ended is not None:
                labels = [(OUTCOME, ended), *_endpoint(attributes), *extra]
                self._record("librechat.requests.completed", event, labels, 1)
            source = attributes.get("librechat.error.source")
            if source is not None:
                self._record("librechat.errors", event, [("librechat.error.source", source), *extra], 1)
            documents = attributes.get("librechat.search.documents")
            if isinstance(documents, (int, float)) and not isinstance(documents, bool):
                labels = [(key, attributes[key]) for key in SEARCH_KEYS if key in attributes]
                self._record("librechat.search.documents", event, labels + extra, documents)

    def _seal(self, time_unix_nano: int) -> None:
        """Keeps the totals of the series changed in the hour that ends (files of several families are read one
        after the other, so the hour of records may also step back). Past `MAX_SEALED` kept points, hours
        merge until the next export."""
        self._hour = time_unix_nano - time_unix_nano % HOUR_NS
        if len(self._sealed) >= MAX_SEALED:
            return
        for series_id in self._since_seal:
            series = self._series[series_id[0]][series_id[1]]
            self._sealed.append((series_id, replace(series, buckets=list(series.buckets))))
        self._since_seal.clear()

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
        if attributes.get("librechat.token.context") == MESSAGE:
            self._record("librechat.requests", event, labels + _endpoint(attributes), 1)
            duration = attributes.get(DURATION)
            if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration >= 0:
                self._record("librechat.request.duration", event, labels + _endpoint(attributes), duration / 1000)
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
        attributes = event.attributes
        amount = attributes.get("librechat.credits")
        if not isinstance(amount, (int, float)) or isinstance(amount, bool):
            return
        labels = self._model_labels(attributes) + extra
        self._record("librechat.credits", event, labels, amount)
        for token_type, usd in cost_usd(attributes, self._credits_per_usd):
            typed = labels if token_type is None else [("gen_ai.token.type", token_type), *labels]
            self._record("librechat.cost", event, typed, usd)

    def _record(self, name: str, event: Event, labels: Sequence[tuple[str, Any]], value: int | float) -> None:
        key = self._key(labels)
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
        self._since_seal.add((name, key))

    def _key(self, labels: Sequence[tuple[str, Any]]) -> AttrKey:
        """The series key of `labels`: sorted, values made label values; remembered per label set as given."""
        given = tuple(labels)
        try:
            known = self._keys.get(given)
        except TypeError:  # a list among the values: nothing to remember it by
            return _series_key(labels)
        if known is None:
            if len(self._keys) >= KEYS_KEPT:
                self._keys.clear()
            known = self._keys[given] = _series_key(labels)
        return known

    # Export --------------------------------------------------------------------------------------------
    @property
    def due(self) -> bool:
        """Whether enough hourly totals are kept to export them without waiting for the interval."""
        return len(self._sealed) >= EXPORT_SEALED

    def take(self) -> Taken:
        """What changed since the last acknowledged export; `give_back` it if the export fails."""
        taken = Taken(self._dirty, self._sealed)
        self._dirty, self._sealed = set(), []
        self._since_seal.clear()  # the points taken now hold the totals so far
        for kind, start in self._users.take():
            taken.series.add((USERS, ((USERS_WINDOW, kind), (_WINDOW_START, start))))
        return taken

    def give_back(self, taken: Taken) -> None:
        self._users.give_back({(key[0][1], key[1][1]) for name, key in taken.series if name == USERS})
        series = {(name, key) for name, key in taken.series if name != USERS}
        self._dirty |= series
        self._since_seal |= series
        self._sealed[:0] = taken.sealed

    def request(self, taken: Taken, snapshot: Snapshot | None, now_unix_nano: int) -> ExportMetricsServiceRequest:
        """Points of the `taken` series (the hourly totals first, oldest first), plus logtail's own metrics from
        `snapshot` stamped `now`."""
        by_name: dict[str, list[tuple[AttrKey, Series]]] = {}
        last_sealed: dict[SeriesId, int] = {}
        for (name, key), series in taken.sealed:
            by_name.setdefault(name, []).append((key, series))
            last_sealed[name, key] = series.count
        windows: list[AttrKey] = []
        for name, key in sorted(taken.series, key=lambda item: (item[0], repr(item[1]))):
            if name == USERS:
                windows.append(key)
            elif last_sealed.get((name, key)) != self._series[name][key].count:  # not sent twice
                by_name.setdefault(name, []).append((key, self._series[name][key]))
        metrics = [self._metric(INSTRUMENTS[name], points) for name, points in sorted(by_name.items())]
        if windows:
            metrics.append(self._users_metric(INSTRUMENTS[USERS], windows))
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

    @staticmethod
    def _metric(instrument: Instrument, streams: Sequence[tuple[AttrKey, Series]]) -> Metric:
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
                for key, s in streams
            ]
            return histogram(instrument, points)
        points_n = [number_point(dict(key), s.start_unix_nano, s.time_unix_nano, s.value) for key, s in streams]
        return cumulative_sum(instrument, points_n)

    def _users_metric(self, instrument: Instrument, keys: Sequence[AttrKey]) -> Metric:
        """One point per window, oldest first; its start time is the window's start, its time the latest record's."""
        points = []
        for key in sorted(keys, key=lambda k: (k[1][1], k[0][1])):
            (_, kind), (_, start) = key
            time, users = self._users.point((kind, start))
            points.append(number_point({USERS_WINDOW: kind}, start, time, users))
        return Metric(
            name=instrument.name,
            unit=instrument.unit,
            description=instrument.description,
            gauge=Gauge(data_points=points),
        )


def cost_usd(attributes: Mapping[str, Any], credits_per_usd: float) -> list[tuple[str | None, float]]:
    """A transaction's spending in US dollars by token type (None: a total without parts). LibreChat logs
    spent credits as negative amounts, so a spend is a positive cost and a refund a negative one."""
    parts: list[tuple[str | None, float]] = [
        (token_type, value)
        for key, token_type in COST_PARTS
        if isinstance(value := attributes.get(key), (int, float)) and not isinstance(value, bool)
    ]
    if not parts:
        amount = attributes.get("librechat.credits")
        if not isinstance(amount, (int, float)) or isinstance(amount, bool):
            return []
        parts = [(None, amount)]
    return [(token_type, -credits / credits_per_usd) for token_type, credits in parts]


def _endpoint(attributes: Mapping[str, Any]) -> Labels:
    endpoint = attributes.get(ENDPOINT)
    return [] if endpoint is None else [(ENDPOINT, endpoint)]


def _series_key(labels: Sequence[tuple[str, Any]]) -> AttrKey:
    return tuple(sorted((k, _label(v)) for k, v in labels))


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
SELF_DROPPED: Final = Instrument(
    "logtail.dead_letters.dropped", "{record}", "Dead letters removed by the dead-letter file's size cap", "sum"
)
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
        cumulative_sum(
            SELF_DROPPED,
            [number_point({}, start, now, snapshot.dead_letters_dropped)] if snapshot.dead_letters_dropped else [],
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
