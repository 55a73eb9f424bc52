"""Backends that misbehave without refusing: one that takes the request and never answers, one that answers
200 with a body that is not OTLP (a proxy's or a web UI's page). Neither may cost a record (issue 13)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from stub_backend import Reply, StubBackend, sequence
from test_export import make_config, sample_events
from test_export_refusals import UID, uids

from logtail.export import ExportGaveUp, build_sink
from logtail.service.selfmetrics import SelfMetrics
from parsers.event import Event


@pytest.fixture(scope="module")
def events(samples: Path) -> list[Event]:
    return [e for e in sample_events(samples) if not e.attributes.get("logtail.twin")][:32]


def test_a_backend_that_never_answers_times_out_and_the_batch_is_retried(events: list[Event], tmp_path: Path) -> None:
    metrics = SelfMetrics()
    with StubBackend(sequence(Reply(hang=True), Reply(hang=True))) as backend:
        sink = build_sink(
            make_config(tmp_path, endpoint=backend.endpoint, timeout=0.5),
            self_metrics=metrics,
            stop=threading.Event(),
            dead_letter_path=tmp_path / "dead.jsonl",
        )
        sink.ship(events)
        sink.close()
    logs = [r for r in backend.requests if r.path.endswith("/v1/logs")]
    assert len(logs) == 3 and logs[2].at - logs[0].at >= 2 * 0.5  # two timeouts, then the answer
    assert uids(backend.stored) == Counter(str(e.attributes[UID]) for e in events)
    assert sink.summary.acknowledged == len(events) and sink.summary.dead_lettered == 0
    assert metrics.snapshot().errors["export_logs_retry"] == 2
    assert not (tmp_path / "dead.jsonl").exists()


PAGES = {
    "html": Reply(body=b"<!doctype html><title>Sign in</title>", headers={"Content-Type": "text/html; charset=utf-8"}),
    "protobuf": Reply(body=b"\xff\xfe not a message", headers={"Content-Type": "application/x-protobuf"}),
    "json": Reply(body=b"<html>", headers={"Content-Type": "application/json"}),
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_200_with_a_body_that_is_not_otlp_is_not_an_acknowledgement(
    page: str, events: list[Event], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = SelfMetrics()
    with StubBackend(sequence(PAGES[page])) as backend:
        sink = build_sink(
            make_config(tmp_path, endpoint=backend.endpoint),
            self_metrics=metrics,
            stop=threading.Event(),
            dead_letter_path=tmp_path / "dead.jsonl",
        )
        sink.ship(events)
        sink.close()
    assert [r.status for r in backend.requests if r.path.endswith("/v1/logs")] == [200, 200]
    assert sink.summary.acknowledged == len(events)
    assert metrics.snapshot().errors["export_logs_retry"] == 1
    assert "not an OTLP response; is export.endpoint right?" in caplog.text


def test_replay_gives_up_on_an_endpoint_that_only_answers_web_pages(events: list[Event], tmp_path: Path) -> None:
    with StubBackend(lambda _records: PAGES["html"]) as backend:
        sink = build_sink(
            make_config(tmp_path, endpoint=backend.endpoint),
            self_metrics=SelfMetrics(),
            stop=threading.Event(),
            retry_deadline=1.0,
            dead_letter_path=tmp_path / "dead.jsonl",
        )
        with pytest.raises(ExportGaveUp, match="not an OTLP response"):
            sink.ship(events)
    assert sink.summary.acknowledged == 0
