"""The embedded collector the whole suite relies on really receives and reports OTLP."""

from __future__ import annotations

import socket
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from logtail.devcollector.collector import DevCollector, _accepts, _ephemeral_range, free_port


def test_collector_records_what_it_receives(collector: DevCollector) -> None:
    provider = LoggerProvider()
    exporter = OTLPLogExporter(endpoint=f"{collector.http_endpoint}/v1/logs")
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("t").emit(body="hello", event_name="librechat.x", attributes={"n": 3, "l": ["a"]})
    provider.shutdown()
    logs = collector.wait_for_logs(1)
    assert len(logs) == 1
    assert logs[0]["body"] == "hello"
    assert logs[0]["event_name"] == "librechat.x"
    assert logs[0]["attributes"] == {"n": 3, "l": ["a"]}


def test_free_ports_stay_out_of_the_range_outgoing_connections_use() -> None:
    low, high = _ephemeral_range()
    assert all(not low <= free_port() <= high for _ in range(50))


def test_a_port_taken_before_the_first_start_moves_the_collector_elsewhere(tmp_path: Path) -> None:
    squatter = DevCollector(workdir=tmp_path / "squatter")
    with socket.socket() as held:
        held.bind(("127.0.0.1", squatter.http_port))
        held.listen()
        with squatter as running:
            assert running.http_port != held.getsockname()[1]
            assert _accepts(running.http_port) and _accepts(running.grpc_port)
