"""OTLP encoding of events: the official protobuf messages for gRPC and HTTP/protobuf, OTLP/JSON for HTTP/JSON.

Everything here works on a whole batch at once and builds no intermediate per-record objects besides the
messages themselves (or plain dicts for JSON): a replay pushes hundreds of thousands of records through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from parsers.event import Event

SCOPE_NAME: Final = "logtail"
EVENT_NAME_ATTRIBUTE: Final = "otel.event.name"
# Numbers in log text can exceed int64; such values travel as their decimal text.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# Bound on the remembered serialized attributes (and on the pairs seen once).
_ENCODED_KEPT: Final = 8192
# Rewrites one event's attributes for a backend (profiles.py); None keeps them as they are.
AttributeMap = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def any_value(value: Any) -> AnyValue:
    """An attribute value as OTLP AnyValue; bool before int, since bool is an int in Python."""
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value) if INT64_MIN <= value <= INT64_MAX else AnyValue(string_value=str(value))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    return AnyValue(string_value=str(value))


def key_values(attributes: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def json_value(value: Any) -> dict[str, Any]:
    """An attribute value in OTLP/JSON: 64-bit integers travel as decimal strings (proto3 JSON mapping)."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)} if INT64_MIN <= value <= INT64_MAX else {"stringValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [json_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": json_key_values(value)}}
    return {"stringValue": str(value)}


def json_key_values(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": json_value(value)} for key, value in attributes.items()]


class LogEncoder:
    """Turns a batch of events into one export request body, for one resource and one scope."""

    def __init__(self, resource: Mapping[str, Any], scope_version: str, attribute_map: AttributeMap | None = None):
        self._resource = Resource(attributes=key_values(resource))
        self._scope = InstrumentationScope(name=SCOPE_NAME, version=scope_version)
        self._json_resource = {"attributes": json_key_values(resource)}
        self._json_scope = {"name": SCOPE_NAME, "version": scope_version}
        self._map = attribute_map
        # Serialized string attributes seen twice or more, and those seen once (which a second sighting admits):
        # most values repeat (file names, families, models, sources), some never do (ids).
        self._encoded: dict[tuple[str, str], bytes] = {}
        self._seen: set[tuple[str, str]] = set()

    def _attributes(self, event: Event) -> Mapping[str, Any]:
        attributes: dict[str, Any] = {**event.attributes, EVENT_NAME_ATTRIBUTE: event.event_name}
        return self._map(attributes) if self._map else attributes

    def protobuf(self, events: Sequence[Event], observed_unix_nano: int) -> bytes:
        # Filling messages in place (`add()`, then setting fields) is about three times faster with upb
        # than building each LogRecord, KeyValue and AnyValue with keyword arguments and copying them in.
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        resource_logs.resource.CopyFrom(self._resource)
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.CopyFrom(self._scope)
        add_record = scope_logs.log_records.add
        encoded, seen = self._encoded, self._seen
        for event in events:
            record = add_record(
                time_unix_nano=event.time_unix_nano,
                observed_time_unix_nano=event.observed_unix_nano or observed_unix_nano,  # a runtime's time first
                severity_number=event.severity_number,
                severity_text=event.severity_text,
                event_name=event.event_name,
            )
            record.body.string_value = event.body
            add_attribute = record.attributes.add
            # Without a backend's rewrite the event's own dict is read as it is, the event name added after it.
            attributes: Mapping[str, Any] = self._attributes(event) if self._map else event.attributes
            repeated: list[bytes] = []
            for key, value in attributes.items():
                kind = type(value)
                if kind is str:
                    # A string attribute seen before (file names, models, sources, …) is copied in as bytes.
                    pair = (key, value)
                    ready = encoded.get(pair)
                    if ready is not None:
                        repeated.append(ready)
                        continue
                    if pair in seen:
                        repeated.append(self._encode_attribute(pair))
                        continue
                    if len(seen) >= _ENCODED_KEPT:
                        seen.clear()
                    seen.add(pair)
                    add_attribute(key=key).value.string_value = value
                    continue
                target = add_attribute(key=key).value
                if kind is int and INT64_MIN <= value <= INT64_MAX:
                    target.int_value = value
                elif kind is float:
                    target.double_value = value
                elif kind is bool:
                    target.bool_value = value
                else:
                    target.CopyFrom(any_value(value))
            if not self._map:
                pair = (EVENT_NAME_ATTRIBUTE, event.event_name)
                repeated.append(encoded.get(pair) or self._encode_attribute(pair))
            if repeated:
                record.MergeFromString(b"".join(repeated))
        body: bytes = request.SerializeToString()
        return body

    def _encode_attribute(self, pair: tuple[str, str]) -> bytes:
        """The LogRecord `attributes` field for a string attribute, as bytes, remembered (bounded)."""
        if len(self._encoded) >= _ENCODED_KEPT:
            self._encoded.clear()
        record = LogRecord(attributes=[KeyValue(key=pair[0], value=AnyValue(string_value=pair[1]))])
        field: bytes = record.SerializeToString()
        self._encoded[pair] = field
        return field

    def json(self, events: Sequence[Event], observed_unix_nano: int) -> bytes:
        observed = str(observed_unix_nano)
        records = [
            {
                "timeUnixNano": str(event.time_unix_nano),
                "observedTimeUnixNano": str(event.observed_unix_nano) if event.observed_unix_nano else observed,
                "severityNumber": event.severity_number,
                "severityText": event.severity_text,
                "body": {"stringValue": event.body},
                "attributes": json_key_values(self._attributes(event)),
                "eventName": event.event_name,
            }
            for event in events
        ]
        request = {
            "resourceLogs": [
                {
                    "resource": self._json_resource,
                    "scopeLogs": [{"scope": self._json_scope, "logRecords": records}],
                }
            ]
        }
        return orjson.dumps(request)
