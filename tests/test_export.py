"""OTLP export over the wire to the real collector: every record arrives exactly once, as the contract says."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from stub_backend import Reply, StubBackend

from logtail.commands.demo import CORPORA
from logtail.config import Config, MetricsConfig
from logtail.devcollector.collector import DevCollector
from logtail.export import build_sink, shipper
from logtail.export.metrics import EXPORT_SEALED, Aggregator
from logtail.export.sink import Sink
from logtail.pipeline import Pipeline
from logtail.service.selfmetrics import SelfMetrics
from logtail.source.files import discover
from logtail.source.read import read_events
from parsers.event import Attributes, Event


def sample_events(samples: Path) -> list[Event]:
    """The sample corpora as the service would hand them to the exporter: parsed, correlated, redacted."""
    events: list[Event] = []
    for corpus in CORPORA:
        pipeline = Pipeline()
        for log_file in discover([samples / corpus]):
            events += pipeline.process(list(read_events(log_file)))
    return events


def make_config(tmp_path: Path, **export: Any) -> Config:
    return Config.model_validate(
        {"source": {"logs_dir": str(tmp_path), "state_dir": str(tmp_path / "state")}, "export": export}
    )


def assert_same_attributes(received: dict[str, Any], sent: dict[str, Any]) -> None:
    """Equal, floats to the last bit but one: rotel's JSON reader rounds 4083.2000000000003 to 4083.2."""
    assert received.keys() == sent.keys()
    for key, value in sent.items():
        assert received[key] == (pytest.approx(value, rel=1e-15) if isinstance(value, float) else value), key


@pytest.fixture(scope="module")
def events(samples: Path) -> list[Event]:
    return sample_events(samples)


def final_points(collector: DevCollector, name: str) -> list[dict[str, Any]]:
    """The last point received of every series of metric `name` (cumulative: the totals), once the
    collector has written all it got (it reports asynchronously)."""
    deadline = time.monotonic() + 10
    while not any(p["name"] == name for p in collector.metrics()) and time.monotonic() < deadline:
        time.sleep(0.05)
    last: dict[str, dict[str, Any]] = {}
    for point in collector.metrics():
        if point["name"] == name:
            last[repr(sorted(point["attributes"].items()))] = point
    return list(last.values())


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json", "grpc"])
def test_every_sample_record_arrives_exactly_once_and_metrics_match(
    protocol: str, collector: DevCollector, events: list[Event], tmp_path: Path
) -> None:
    shipped = [e for e in events if not e.attributes.get("logtail.twin")]
    endpoint = collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint
    config = make_config(tmp_path, endpoint=endpoint, protocol=protocol, batch_max_records=200)
    sink = build_sink(config, self_metrics=SelfMetrics(), stop=threading.Event())
    sink.ship(events)
    sink.close()

    received = collector.wait_for_logs(len(shipped))
    by_uid = Counter(r["attributes"]["log.record.uid"] for r in received)
    assert len(received) == len(shipped)
    assert set(by_uid.values()) == {1}
    expected = {e.attributes["log.record.uid"]: e for e in shipped}
    assert set(by_uid) == set(expected)
    for record in received:
        event = expected[record["attributes"]["log.record.uid"]]
        assert record["event_name"] == event.event_name
        assert_same_attributes(record["attributes"], {**event.attributes, "otel.event.name": event.event_name})
        assert record["time_unix_nano"] == event.time_unix_nano
        assert record["severity_number"] == event.severity_number
        assert record["severity_text"] == event.severity_text
        assert record["body"] == event.body
        assert record["observed_time_unix_nano"] > 0
    resource = received[0]["resource"]
    assert resource["service.name"] == "librechat"
    assert resource["host.name"] and resource["service.instance.id"]
    assert sink.summary.acknowledged == len(shipped)
    assert sink.summary.skipped == len(events) - len(shipped)
    assert sink.summary.by_event_name == Counter(e.event_name for e in shipped)

    usage = [e for e in shipped if e.event_name == "librechat.token.usage"]
    for token_type, key in (("input", "gen_ai.usage.input_tokens"), ("output", "gen_ai.usage.output_tokens")):
        total = sum(e.attributes[key] for e in usage if key in e.attributes)  # type: ignore[misc]
        assert total > 0
        sums = [
            p for p in final_points(collector, "librechat.tokens") if p["attributes"]["gen_ai.token.type"] == token_type
        ]
        assert sum(p["value"] for p in sums) == total
        hist = [
            p
            for p in final_points(collector, "gen_ai.client.token.usage")
            if p["attributes"]["gen_ai.token.type"] == token_type
        ]
        assert sum(p["sum"] for p in hist) == total
        assert sum(p["count"] for p in hist) == sum(1 for e in usage if key in e.attributes)
    bans = [e.time_unix_nano for e in shipped if e.event_name == "librechat.ban"]
    (ban_total,) = final_points(collector, "librechat.bans")
    assert ban_total["value"] == len(bans)
    # Stamped with the records' own times, not the time of the export.
    assert (ban_total["start_time_unix_nano"], ban_total["time_unix_nano"]) == (min(bans), max(bans))
    assert all(p["temporality"] == 2 for p in collector.metrics() if p["kind"] in ("sum", "histogram"))
    for point in collector.metrics():
        assert not {"user.id", "gen_ai.conversation.id", "librechat.request.id"} & set(point["attributes"])
    records = {
        (p["attributes"]["logtail.file.family"], p["attributes"]["logtail.outcome"]): p["value"]
        for p in final_points(collector, "logtail.records")
    }
    assert sum(n for (_, outcome), n in records.items() if outcome in ("exported", "unparsed")) == len(shipped)


def test_metric_cardinality_is_bounded_and_identifiers_are_opt_in(
    collector: DevCollector, events: list[Event], tmp_path: Path
) -> None:
    config = make_config(tmp_path, endpoint=collector.http_endpoint).model_copy(
        update={"metrics": MetricsConfig(max_models=2, allowed_attributes=["user.id"])}
    )
    sink = build_sink(config, self_metrics=SelfMetrics(), stop=threading.Event())
    sink.ship(events)
    sink.close()
    points = final_points(collector, "librechat.tokens")
    models = {p["attributes"].get("gen_ai.request.model") for p in points} - {None}
    assert len(models - {"other"}) == 2 and "other" in models
    assert any("user.id" in p["attributes"] for p in points)
    usage = [e for e in events if e.event_name == "librechat.token.usage" and not e.attributes.get("logtail.twin")]
    input_total = sum(e.attributes.get("gen_ai.usage.input_tokens", 0) for e in usage)  # type: ignore[misc]
    assert sum(p["value"] for p in points if p["attributes"]["gen_ai.token.type"] == "input") == input_total


def test_series_beyond_the_cap_fold_into_one_overflow_series() -> None:
    aggregator = Aggregator(MetricsConfig(max_series=3), {"service.name": "librechat"}, "0")
    violations = [
        Event(
            "librechat.violation",
            1000 + i,
            "warn",
            13,
            "",
            {"librechat.violation.type": f"t{i}"},
            "error",
            "f",
            i,
            0,
            1,
        )
        for i in range(6)
    ]
    aggregator.add(violations)
    (metric,) = aggregator.request(aggregator.take(), None, 0).resource_metrics[0].scope_metrics[0].metrics
    totals = {
        tuple((kv.key, getattr(kv.value, kv.value.WhichOneof("value"))) for kv in p.attributes): p.as_int
        for p in metric.sum.data_points
    }
    assert len(totals) == 4
    assert totals[(("otel.metric.overflow", True),)] == 3
    assert sum(totals.values()) == 6


def test_a_collector_outage_delays_delivery_and_loses_nothing(
    collector: DevCollector, events: list[Event], tmp_path: Path
) -> None:
    shipped = [e for e in events if not e.attributes.get("logtail.twin")]
    sink = build_sink(
        make_config(tmp_path, endpoint=collector.http_endpoint), self_metrics=SelfMetrics(), stop=threading.Event()
    )
    collector.kill()
    worker = threading.Thread(target=sink.ship, args=(events,))
    worker.start()
    time.sleep(1.5)
    assert worker.is_alive()  # waiting, not dropping
    collector.start()
    worker.join(30)
    assert not worker.is_alive()
    received = collector.wait_for_logs(len(shipped))
    assert Counter(r["attributes"]["log.record.uid"] for r in received) == Counter(
        e.attributes["log.record.uid"] for e in shipped
    )


def _usage(hour: int) -> Event:
    """A model response's token usage, five seconds into UTC hour `hour`."""
    usage: Attributes = {"librechat.token.context": "message", "librechat.endpoint": "openAI"}
    return Event("librechat.token.usage", (hour * 3600 + 5) * 10**9, "debug", 5, "", usage, "debug", "d.log", 1, 0, 1)


def _ship_hours(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Sink, int]:
    """Ships one token usage in each of three times EXPORT_SEALED hours, 500 a call, with metrics due only hourly unless
    early (no pause between early exports); the sink and the number of hours."""
    monkeypatch.setattr(shipper, "METRICS_EARLIEST", 0.0)
    config = make_config(tmp_path, endpoint=endpoint).model_copy(update={"metrics": MetricsConfig(interval=3600)})
    sink = build_sink(config, self_metrics=SelfMetrics(), stop=threading.Event())
    hours = 3 * EXPORT_SEALED
    for start in range(0, hours, 500):
        sink.ship([_usage(hour) for hour in range(start, start + 500)])
    return sink, hours


def test_a_replay_of_many_hours_exports_their_totals_as_it_goes_each_hour_once(
    collector: DevCollector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of hourly totals are not kept for one huge request at the end: they leave in requests of about
    `EXPORT_SEALED` points while the records are shipped, and every hour arrives once with its running total."""
    sink, hours = _ship_hours(collector.http_endpoint, tmp_path, monkeypatch)
    before_close = len([p for p in collector.metrics() if p["name"] == "librechat.requests"])
    assert before_close >= hours - EXPORT_SEALED - 500
    sink.close()
    deadline = time.monotonic() + 10
    while len(points := [p for p in collector.metrics() if p["name"] == "librechat.requests"]) < hours:
        assert time.monotonic() < deadline, f"{len(points)} of {hours} hourly points"
        time.sleep(0.05)
    assert sorted(p["value"] for p in points) == list(range(1, hours + 1))


def test_a_failing_metrics_endpoint_is_not_tried_early_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each attempt may wait out the timeout, and the logs with it: after a failure the interval, not the number of
    hours kept, says when to try again."""
    with StubBackend(lambda _records: Reply(), metrics_status=503) as backend:
        _sink, hours = _ship_hours(backend.endpoint, tmp_path, monkeypatch)
        assert len(backend.stored) == hours
        assert len(backend.metrics_requests) == 1  # the first ship's; none early while failing


def test_an_idle_service_still_exports_its_own_metrics(
    collector: DevCollector, events: list[Event], tmp_path: Path
) -> None:
    config = make_config(tmp_path, endpoint=collector.http_endpoint).model_copy(
        update={"metrics": MetricsConfig(interval=0.2)}
    )
    sink = build_sink(config, self_metrics=SelfMetrics(), stop=threading.Event())
    sink.ship(events[:10])
    assert final_points(collector, "logtail.records")
    collector.clear()
    sink.ship([])  # too soon: nothing is due
    time.sleep(0.3)
    assert collector.metrics() == []
    sink.ship([])
    records = final_points(collector, "logtail.records")
    exported = sum(p["value"] for p in records if p["attributes"]["logtail.outcome"] == "exported")
    assert exported == sum(1 for e in events[:10] if not e.attributes.get("logtail.twin"))
    assert not [p for p in collector.metrics() if p["name"].startswith("librechat.")]  # unchanged series are not resent
    sink.close()


def test_content_the_encoder_cannot_carry_costs_only_its_own_record(
    collector: DevCollector, events: list[Event], tmp_path: Path
) -> None:
    batch = [dataclasses.replace(e, attributes=dict(e.attributes)) for e in events[:40]]
    batch = [e for e in batch if not e.attributes.get("logtail.twin")]
    batch[3].attributes["librechat.search.documents"] = 10**30  # beyond int64
    batch[7].body = "lone \ud800 surrogate"  # not encodable as UTF-8
    sink = build_sink(
        make_config(tmp_path, endpoint=collector.http_endpoint),
        self_metrics=SelfMetrics(),
        stop=threading.Event(),
        dead_letter_path=tmp_path / "dead.jsonl",
    )
    sink.ship(batch)
    sink.close()
    received = collector.wait_for_logs(len(batch) - 1)
    by_uid = {r["attributes"]["log.record.uid"]: r for r in received}
    assert len(received) == len(by_uid) == len(batch) - 1
    assert by_uid[batch[3].attributes["log.record.uid"]]["attributes"]["librechat.search.documents"] == str(10**30)
    (letter,) = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert letter["attributes"]["log.record.uid"] == batch[7].attributes["log.record.uid"]
    assert letter["status"] == "not encodable"


def test_metrics_survive_label_and_value_content_from_the_logs() -> None:
    aggregator = Aggregator(MetricsConfig(), {"service.name": "librechat"}, "0")
    usage: Attributes = {
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.request.model": "gpt\ud800",
        "gen_ai.provider.name": ["x"],
    }
    search: Attributes = {"librechat.search.documents": 10**30, "librechat.search.phase": 7}
    aggregator.add(
        [
            Event("librechat.token.usage", 1, "debug", 5, "", usage, "debug", "f", 1, 0, 1),
            Event("librechat.search.sync", 2, "info", 9, "", search, "meili", "f", 2, 1, 2),
        ]
    )
    request = aggregator.request(aggregator.take(), SelfMetrics().snapshot(), 3)
    assert request.SerializeToString()
    points = {m.name: m for m in request.resource_metrics[0].scope_metrics[0].metrics}
    assert points["librechat.search.documents"].sum.data_points[0].as_double == 1e30
    labels = {kv.key: kv.value.string_value for kv in points["librechat.tokens"].sum.data_points[0].attributes}
    assert labels["gen_ai.request.model"] == "gpt?"
    assert labels["gen_ai.provider.name"] == "['x']"
