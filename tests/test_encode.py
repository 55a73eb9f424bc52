"""The protobuf body carries every attribute of every event exactly, however often its values repeat."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from logtail.export import encode
from logtail.export.encode import EVENT_NAME_ATTRIBUTE, SCOPE_NAME, LogEncoder, key_values
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


def upb_request(events: list[Event], observed: int) -> bytes:
    """The same request built with the official messages, attributes in the event's order, the event name last."""
    request = ExportLogsServiceRequest()
    scope_logs = request.resource_logs.add(resource=Resource(attributes=key_values(RESOURCE))).scope_logs.add()
    scope_logs.scope.CopyFrom(InstrumentationScope(name=SCOPE_NAME, version="1"))
    for e in events:
        scope_logs.log_records.add(
            time_unix_nano=e.time_unix_nano,
            observed_time_unix_nano=observed,
            severity_number=e.severity_number,  # type: ignore[arg-type]
            severity_text=e.severity_text,
            body=AnyValue(string_value=e.body),
            attributes=key_values({**e.attributes, EVENT_NAME_ATTRIBUTE: e.event_name}),
            event_name=e.event_name,
        )
    body: bytes = request.SerializeToString()
    return body


RESOURCE = {"service.name": "librechat", "host.name": "h"}
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
ANY_VALUE = st.one_of(
    TEXT,
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.lists(TEXT, max_size=3),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
)
EVENTS = st.builds(
    Event,
    event_name=st.sampled_from(["", "librechat.log", "librechat.token.usage"]),
    time_unix_nano=st.integers(0, 2**64 - 1),
    severity_text=st.sampled_from(["", "error", "info"]),
    severity_number=st.sampled_from([0, 5, 9, 17]),
    body=TEXT,
    attributes=st.dictionaries(st.one_of(st.just(""), TEXT), ANY_VALUE, max_size=5),
    family=st.just("error"),
    file=st.just("f"),
    line=st.just(1),
    start=st.just(0),
    end=st.just(1),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(EVENTS, max_size=6), st.integers(0, 2**64 - 1))
def test_the_bytes_written_directly_are_those_of_the_official_messages(events: list[Event], observed: int) -> None:
    encoder = LogEncoder(RESOURCE, "1")
    for _ in range(3):  # the second and third time from remembered attributes
        assert encoder.protobuf(events, observed) == upb_request(events, observed)


@pytest.mark.parametrize("size", [0, 127, 128, 16_383, 16_384, 1 << 21])
def test_lengths_on_either_side_of_a_varint_byte_are_written_as_the_official_messages_write_them(size: int) -> None:
    # Lengths cross a varint byte inside the value, around it (AnyValue), and around the key and value (KeyValue).
    events = [event("librechat.log", {"k" * key_size: "é" * (size // 2) + "x" * (size % 2)}) for key_size in (1, 126)]
    assert LogEncoder(RESOURCE, "1").protobuf(events, 7) == upb_request(events, 7)
