"""What the shipper does when a backend says no: retries, waits as asked, bisects to the refused records and
dead-letters exactly those. The refusals come from a stub backend (a real collector always accepts)."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from stub_backend import POISON, Backend, GrpcStubBackend, Reply, StubBackend, attribute, poisoned, sequence
from test_export import make_config, sample_events

from logtail.config import load_config
from logtail.export import ExportGaveUp, Shipper, build_sink
from logtail.export.sink import ShutdownInterrupted
from logtail.service.selfmetrics import SelfMetrics
from parsers.event import Event

UID = "log.record.uid"


@pytest.fixture(scope="module")
def corpus(samples: Path) -> list[Event]:
    return [e for e in sample_events(samples) if not e.attributes.get("logtail.twin")]


@pytest.fixture
def events(corpus: list[Event]) -> list[Event]:
    """64 fresh copies of sample events (tests poison some)."""
    return [dataclasses.replace(e) for e in corpus[:64]]


def poison(events: list[Event], *indexes: int) -> set[str]:
    for i in indexes:
        events[i].body += f" {POISON}"
    return {str(events[i].attributes[UID]) for i in indexes}


def uids(records: list[LogRecord]) -> Counter[str]:
    return Counter(attribute(r, UID) for r in records)


def refuse_poisoned(status: int) -> Any:
    def policy(records: list[LogRecord]) -> Reply:
        return Reply(status, message="record not accepted") if any(map(poisoned, records)) else Reply()

    return policy


def sink_for(backend: Backend, tmp_path: Path, **kwargs: Any) -> tuple[Shipper, SelfMetrics]:
    protocol = "grpc" if isinstance(backend, GrpcStubBackend) else "http/protobuf"
    metrics = SelfMetrics()
    sink = build_sink(
        make_config(tmp_path, endpoint=backend.endpoint, protocol=protocol),
        self_metrics=metrics,
        stop=kwargs.pop("stop", threading.Event()),
        dead_letter_path=tmp_path / "dead.jsonl",
        **kwargs,
    )
    return sink, metrics


def dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (tmp_path / "dead.jsonl").read_bytes().splitlines()]


@pytest.mark.parametrize("backend_type", [StubBackend, GrpcStubBackend])
def test_unavailable_then_ok_delivers_every_record_once(
    backend_type: type[Backend], events: list[Event], tmp_path: Path
) -> None:
    with backend_type(sequence(Reply(503), Reply(503))) as backend:
        sink, metrics = sink_for(backend, tmp_path)
        sink.ship(events)
    assert [r.status for r in backend.requests] == [503, 503, 200]
    assert uids(backend.stored) == Counter(str(e.attributes[UID]) for e in events)
    assert sink.summary.acknowledged == len(events)
    assert metrics.snapshot().errors["export_logs_retry"] == 2
    assert not (tmp_path / "dead.jsonl").exists()


def test_429_waits_at_least_as_long_as_retry_after(events: list[Event], tmp_path: Path) -> None:
    with StubBackend(sequence(Reply(429, {"Retry-After": "2"}))) as backend:
        sink, _ = sink_for(backend, tmp_path)
        sink.ship(events)
    first, second = backend.requests
    assert second.at - first.at >= 2.0
    assert len(backend.stored) == len(events)


@pytest.mark.parametrize("backend_type", [StubBackend, GrpcStubBackend])
def test_a_refused_record_is_found_by_bisection_and_dead_lettered_alone(
    backend_type: type[Backend], events: list[Event], tmp_path: Path
) -> None:
    bad = poison(events, 37)
    with backend_type(refuse_poisoned(400)) as backend:
        sink, metrics = sink_for(backend, tmp_path)
        sink.ship(events)
    good = Counter(str(e.attributes[UID]) for e in events if str(e.attributes[UID]) not in bad)
    assert uids(backend.stored) == good  # nothing lost, nothing twice
    (letter,) = dead_letters(tmp_path)
    assert letter["attributes"][UID] in bad
    assert letter["body"].endswith(POISON)
    assert letter["reason"] == "record not accepted"
    assert letter["status"] == ("HTTP 400" if backend_type is StubBackend else "gRPC INVALID_ARGUMENT")
    assert stat.S_IMODE(os.stat(tmp_path / "dead.jsonl").st_mode) == 0o600
    assert (sink.summary.acknowledged, sink.summary.dead_lettered) == (63, 1)
    family = events[37].family
    assert metrics.snapshot().records[family, "dead_lettered"] == 1
    assert len(backend.requests) == 1 + 2 * 6  # each level of the bisection halves one refused batch


def test_partial_success_rejections_are_bisected_and_dead_lettered(events: list[Event], tmp_path: Path) -> None:
    bad = poison(events, 3, 50)

    def policy(records: list[LogRecord]) -> Reply:
        refused = sum(map(poisoned, records))
        return Reply(200, rejected=refused, message="too old") if refused else Reply()

    with StubBackend(policy) as backend:
        sink, _ = sink_for(backend, tmp_path)
        sink.ship(events)
    letters = dead_letters(tmp_path)
    assert {letter["attributes"][UID] for letter in letters} == bad
    assert {letter["reason"] for letter in letters} == {"too old"}
    # The backend stored the others with the first request already; bisecting sends some of them again.
    assert set(uids(backend.stored)) == {str(e.attributes[UID]) for e in events} - bad
    assert (sink.summary.acknowledged, sink.summary.dead_lettered) == (62, 2)


def test_replay_gives_up_after_its_retry_deadline(events: list[Event], tmp_path: Path) -> None:
    with StubBackend(lambda records: Reply(503)) as backend:
        sink, _ = sink_for(backend, tmp_path, retry_deadline=1.0)
        began = time.monotonic()
        with pytest.raises(ExportGaveUp, match="HTTP 503"):
            sink.ship(events)
    assert time.monotonic() - began < 3
    assert sink.summary.acknowledged == 0


def test_stop_interrupts_the_retries_of_the_service(events: list[Event], tmp_path: Path) -> None:
    stop = threading.Event()
    with StubBackend(lambda records: Reply(503)) as backend:
        sink, _ = sink_for(backend, tmp_path, stop=stop)
        threading.Timer(0.5, stop.set).start()
        began = time.monotonic()
        with pytest.raises(ShutdownInterrupted):
            sink.ship(events)
    assert time.monotonic() - began < 2


def test_headers_reach_the_backend_and_credentials_never_reach_the_logs(
    events: list[Event], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    poison(events, 5)
    policy = refuse_poisoned(400)
    replies = iter([Reply(503)])
    with StubBackend(lambda records: next(replies, None) or policy(records)) as backend:
        env = {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20sekrit-token,x-tenant=acme"}
        config = load_config(
            None, env=env, overrides=[f"source.logs_dir={tmp_path}", f"export.endpoint={backend.endpoint}"]
        )
        with caplog.at_level(logging.DEBUG):
            sink = build_sink(
                config, self_metrics=SelfMetrics(), stop=threading.Event(), dead_letter_path=tmp_path / "d"
            )
            sink.ship(events)
            sink.close()
    first = backend.requests[0].headers
    assert first["authorization"] == "Bearer sekrit-token"
    assert first["x-tenant"] == "acme"
    assert first["content-encoding"] == "gzip"
    assert "sekrit" not in caplog.text
    assert "sekrit" not in (tmp_path / "d").read_text()
    assert "503" in caplog.text and "refused" in caplog.text  # the failures themselves are reported
