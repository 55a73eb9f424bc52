"""The health endpoint over real HTTP: /healthz status and JSON, /metrics in strict Prometheus text format."""

from __future__ import annotations

import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import orjson
import pytest

from logtail.devcollector.collector import free_port
from logtail.service.health import HealthServer, health, start_health_server
from logtail.service.selfmetrics import DURATION_BOUNDS, SelfMetrics

# Prometheus text exposition format 0.0.4: comments, HELP/TYPE and samples (no timestamps are written).
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)"
SAMPLE = re.compile(rf"^({_NAME})(?:\{{((?:{_LABEL})(?:,{_LABEL})*)?\}})? ({_VALUE})$")
HELP = re.compile(rf"^# HELP ({_NAME}) \S.*$")
TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


def parse_exposition(text: str) -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    """family -> (type, samples); fails on any line outside the grammar or a sample without HELP and TYPE."""
    assert text.endswith("\n")
    families: dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]] = {}
    helped: set[str] = set()
    current = ""
    for line in text[:-1].split("\n"):
        if m := HELP.match(line):
            assert m[1] not in helped, f"second HELP for {m[1]}"
            helped.add(m[1])
            current = m[1]
        elif m := TYPE.match(line):
            assert m[1] == current and m[1] not in families, line
            families[m[1]] = (m[2], [])
        else:
            m = SAMPLE.match(line)
            assert m, f"not Prometheus text: {line!r}"
            name, labels, value = m[1], m[2] or "", m[3]
            kind, samples = families[current]
            assert any(name == current + suffix for suffix in SUFFIXES[kind]), f"{name} outside family {current}"
            pairs = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
            samples.append((name, pairs, float(value)))
    assert helped == set(families)
    return families


def fetch(server: HealthServer, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers["Content-Type"], refused.read()


@pytest.fixture
def metrics() -> SelfMetrics:
    return SelfMetrics()


@pytest.fixture
def server(metrics: SelfMetrics) -> Iterator[HealthServer]:
    running = start_health_server(f"127.0.0.1:{free_port()}", metrics)
    yield running
    running.close()


def test_healthz_reports_lag_last_ack_and_dead_letters(metrics: SelfMetrics, server: HealthServer) -> None:
    status, content_type, body = fetch(server, "/healthz")
    assert (status, content_type) == (200, "application/json")
    assert orjson.loads(body) == {
        "status": "ok",
        "stalled": False,
        "lag_bytes": {},
        "seconds_since_last_ack": None,
        "dead_letters": 0,
        "dead_letters_dropped": 0,
        "errors": {},
    }

    metrics.set_lag("debug", 1200)
    metrics.set_lag("error", 0)
    metrics.observe_export(0.02, acked=True)
    metrics.count_records("error", "dead_lettered", 3)
    status, _, body = fetch(server, "/healthz")
    document = orjson.loads(body)
    assert status == 200
    assert document["status"] == "degraded"  # dead letters need a look, but shipping goes on
    assert document["lag_bytes"] == {"debug": 1200, "error": 0}
    assert document["dead_letters"] == 3
    assert 0 <= document["seconds_since_last_ack"] < 5


@pytest.mark.parametrize("wait", ["lag", "never_acked"])
def test_healthz_is_503_when_nothing_is_acknowledged_for_long_while_bytes_wait(metrics: SelfMetrics, wait: str) -> None:
    server = start_health_server(f"127.0.0.1:{free_port()}", metrics, stall_after=0.0)
    try:
        metrics.count_error("unreadable")
        assert fetch(server, "/healthz")[0] == 200  # nothing waits: idle is healthy, read problems are only shown
        if wait == "lag":
            metrics.observe_export(0.01, acked=True)
            metrics.set_lag("debug", 10)
        else:  # the backend was down from the start: no lag reported yet, but bytes were read
            metrics.add_bytes("debug", 10)
        time.sleep(0.01)
        status, _, body = fetch(server, "/healthz")
        assert status == 503
        assert orjson.loads(body)["stalled"] is True and orjson.loads(body)["status"] == "degraded"
        metrics.observe_export(0.01, acked=True)
        metrics.set_lag("debug", 0)
        assert fetch(server, "/healthz")[0] == 200  # an acknowledgement ends the stall
    finally:
        server.close()


def test_healthz_status_from_a_snapshot() -> None:
    """Degraded after a fifth of the stall time without an acknowledgement, 503 after all of it."""
    snapshot = SelfMetrics().snapshot()
    start = snapshot.start_unix_nano / 1e9
    waiting = replace(snapshot, lag={"debug": 5}, last_ack_unix=start)
    assert health(waiting, start + 10, stall_after=300)[1]["status"] == "ok"
    assert health(waiting, start + 61, stall_after=300)[1]["status"] == "degraded"
    assert health(waiting, start + 301, stall_after=300)[0] == 503
    assert health(replace(waiting, lag={"debug": 0}), start + 3000, stall_after=300)[0] == 200


def test_metrics_are_strict_prometheus_text_with_the_self_metrics(metrics: SelfMetrics, server: HealthServer) -> None:
    metrics.count_records("debug", "exported", 40)
    metrics.count_records("debug", "skipped", 2)
    metrics.count_records("error", "dead_lettered", 1)
    metrics.add_bytes("debug", 5000)
    metrics.set_lag("debug", 123)
    metrics.count_error("unreadable")
    for seconds in (0.004, 0.2, 0.2, 30.0):
        metrics.observe_export(seconds, acked=True)

    status, content_type, body = fetch(server, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    families = parse_exposition(body.decode())

    for name, (kind, _) in families.items():
        assert (kind == "counter") == name.endswith("_total"), name
    values = {
        (name, tuple(sorted(labels.items()))): v for _, samples in families.values() for name, labels, v in samples
    }
    assert values["logtail_records_total", (("family", "debug"), ("outcome", "exported"))] == 40
    assert values["logtail_records_total", (("family", "debug"), ("outcome", "skipped"))] == 2
    assert values["logtail_records_total", (("family", "error"), ("outcome", "dead_lettered"))] == 1
    assert values["logtail_bytes_read_total", (("family", "debug"),)] == 5000
    assert values["logtail_lag_bytes", (("family", "debug"),)] == 123
    assert values["logtail_dead_letters_total", ()] == 1
    assert values["logtail_errors_total", (("kind", "unreadable"),)] == 1

    kind, samples = families["logtail_export_duration_seconds"]
    assert kind == "histogram"
    buckets = [(labels["le"], v) for name, labels, v in samples if name.endswith("_bucket")]
    assert [le for le, _ in buckets] == [*(repr(b) for b in DURATION_BOUNDS), "+Inf"]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)  # cumulative
    assert dict(buckets)["0.005"] == 1 and dict(buckets)["0.25"] == 3 and dict(buckets)["+Inf"] == 4
    assert values["logtail_export_duration_seconds_count", ()] == 4
    assert values["logtail_export_duration_seconds_sum", ()] == pytest.approx(30.404)


def test_label_values_are_escaped(metrics: SelfMetrics, server: HealthServer) -> None:
    metrics.count_error('odd "kind"\\with\nnewline')
    families = parse_exposition(fetch(server, "/metrics")[2].decode())
    [(_, labels, value)] = families["logtail_errors_total"][1]
    assert labels == {"kind": 'odd \\"kind\\"\\\\with\\nnewline'} and value == 1


def test_other_paths_are_404_and_close_frees_the_port(metrics: SelfMetrics) -> None:
    port = free_port()
    server = start_health_server(f"127.0.0.1:{port}", metrics)
    assert fetch(server, "/")[0] == 404
    server.close()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_an_error_naming_the_setting(metrics: SelfMetrics, server: HealthServer) -> None:
    with pytest.raises(OSError, match=rf"^\[Errno \d+\] self.health_address 127.0.0.1:{server.port}: "):
        start_health_server(f"127.0.0.1:{server.port}", metrics)
