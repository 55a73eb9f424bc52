"""OTLP export over the wire to the real collector: every record arrives exactly once, as the contract says."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

from logtail.config import Config
from logtail.devcollector import DevCollector
from logtail.export import build_sink
from logtail.files import discover
from logtail.pipeline import Pipeline
from logtail.read import read_events
from logtail.selfmetrics import SelfMetrics
from parsers.event import Event

CORPORA = ("v0.7", "v0.8")


def sample_events(samples: Path) -> list[Event]:
    """Both corpora as the service would hand them to the exporter: parsed, correlated, redacted."""
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


def test_every_sample_record_arrives_exactly_once_over_http_protobuf(
    collector: DevCollector, samples: Path, tmp_path: Path
) -> None:
    events = sample_events(samples)
    shipped = [e for e in events if not e.attributes.get("logtail.twin")]
    config = make_config(tmp_path, endpoint=collector.http_endpoint, batch_max_records=200)
    self_metrics = SelfMetrics()
    sink = build_sink(config, self_metrics=self_metrics, stop=threading.Event())
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
        assert record["attributes"] == {**event.attributes, "otel.event.name": event.event_name}
        assert record["time_unix_nano"] == event.time_unix_nano
        assert record["severity_number"] == event.severity_number
        assert record["severity_text"] == event.severity_text
        assert record["body"] == event.body
        assert record["observed_time_unix_nano"] > 0
    assert sink.summary.acknowledged == len(shipped)
    assert sink.summary.skipped == len(events) - len(shipped)
    assert sink.summary.by_event_name == Counter(e.event_name for e in shipped)
