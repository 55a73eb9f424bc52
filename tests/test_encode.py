"""The protobuf body carries every attribute of every event exactly, however often its values repeat."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from logtail.export import encode
from logtail.export.encode import EVENT_NAME_ATTRIBUTE, LogEncoder
from parsers.event import Attributes, Event


def plain(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    assert kind is not None
    return getattr(value, kind)


def event(name: str, attributes: Attributes) -> Event:
    return Event(name, 1, "info", 9, "body", attributes, "error", "/logs/error-2025-11-24.log", 1, 0, 10)


def decoded(body: bytes) -> list[tuple[str, dict[str, object]]]:
    records = ExportLogsServiceRequest.FromString(body).resource_logs[0].scope_logs[0].log_records
    return [(r.event_name, {kv.key: plain(kv.value) for kv in r.attributes}) for r in records]


VALUES = st.one_of(st.sampled_from(["gpt-4o", "error", "", "é 李"]), st.text(max_size=8), st.integers(-5, 5))
ATTRIBUTES = st.dictionaries(st.sampled_from(["a", "b", "log.file.name", "gen_ai.request.model"]), VALUES, max_size=4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["librechat.log", "librechat.error"]), ATTRIBUTES), max_size=40))
def test_attributes_arrive_exactly_whether_seen_before_or_not(batches: list[tuple[str, Attributes]]) -> None:
    encoder = LogEncoder({"service.name": "librechat"}, "1")
    events = [event(name, dict(attrs)) for name, attrs in batches]
    for _ in range(3):  # the same values again: now copied from what was remembered
        got = decoded(encoder.protobuf(events, 0))
        assert got == [(e.event_name, {**e.attributes, EVENT_NAME_ATTRIBUTE: e.event_name}) for e in events]


def test_what_is_remembered_stays_bounded_and_correct() -> None:
    # More distinct values than are kept, each seen twice or more: both stores fill up and start again.
    # (The bound itself, not a patched smaller one: a compiled build has the module constant inlined.)
    kept = encode._ENCODED_KEPT
    encoder = LogEncoder({"service.name": "librechat"}, "1")
    events = [event("librechat.log", {"k": f"v{i % (kept + 13)}", "n": i}) for i in range(2 * kept + 200)]
    for _ in range(2):
        got = decoded(encoder.protobuf(events, 0))
        assert got == [(e.event_name, {**e.attributes, EVENT_NAME_ATTRIBUTE: e.event_name}) for e in events]
    assert 0 < len(encoder._encoded) <= kept and 0 < len(encoder._seen) <= kept
