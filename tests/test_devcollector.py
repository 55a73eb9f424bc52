"""The embedded collector the whole suite relies on really receives and reports OTLP."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from logtail.devcollector import DevCollector


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
