"""OTLP encoding of events: protobuf for gRPC and HTTP/protobuf, OTLP/JSON for HTTP/JSON.

Protobuf log records are written as bytes directly (wire.py), the official messages serializing the resource,
the scope and the rare attribute values of other shapes; the bytes are those the messages would give. Everything
here works on a whole batch at once: a replay pushes hundreds of thousands of records through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import orjson
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from logtail.export.wire import INT64_MAX, INT64_MIN, attribute, framed, log_record
from parsers.event import Event

SCOPE_NAME: Final = "logtail"
EVENT_NAME_ATTRIBUTE: Final = "otel.event.name"
# Tags of ExportLogsServiceRequest.resource_logs (1), ResourceLogs.resource (1) and .scope_logs (2),
# ScopeLogs.scope (1) and .log_records (2).
_RESOURCE_LOGS: Final = b"\x0a"
_RESOURCE: Final = b"\x0a"
_SCOPE_LOGS: Final = b"\x12"
_SCOPE: Final = b"\x0a"
_LOG_RECORD: Final = b"\x12"

# Encodes one event's LogRecord, observed at the given time.
EncodeRecord = Callable[[Event, int], bytes]
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
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    return AnyValue(string_value=str(value))


def _serialized(value: object) -> bytes:
    data: bytes = any_value(value).SerializeToString()
    return data


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
    if isinstance(value, (list, tuple)):
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
        self._resource_bytes: bytes = self._resource.SerializeToString()
        self._scope_bytes: bytes = self._scope.SerializeToString()
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
        """One ExportLogsServiceRequest, written as protobuf bytes (wire.py) around the resource and scope: each
        event's LogRecord as encoded ahead by a parse worker (`Event.wire`), or encoded now."""
        records = [
            framed(
                _LOG_RECORD, self.record(event, observed_unix_nano) if event.wire is None else self._completed(event)
            )
            for event in events
        ]
        scope_logs = framed(_SCOPE, self._scope_bytes) + b"".join(records)
        resource_logs = framed(_RESOURCE, self._resource_bytes) + framed(_SCOPE_LOGS, scope_logs)
        return framed(_RESOURCE_LOGS, resource_logs)

    def record(self, event: Event, observed_unix_nano: int) -> bytes:
        """The event's LogRecord message, as bytes."""
        encoded, seen = self._encoded, self._seen
        # Without a backend's rewrite the event's own dict is read as it is, the event name added after it.
        attributes: Mapping[str, Any] = self._attributes(event) if self._map else event.attributes
        fields: list[bytes] = []
        for key, value in attributes.items():
            if type(value) is not str:
                fields.append(attribute(key, value, _serialized))
                continue
            # A string attribute seen before (file names, models, sources, …) is copied in as bytes.
            pair = (key, value)
            ready = encoded.get(pair)
            if ready is None:
                if pair in seen:
                    ready = self._encode_attribute(pair)
                else:
                    if len(seen) >= _ENCODED_KEPT:
                        seen.clear()
                    seen.add(pair)
                    ready = attribute(key, value, _serialized)
            fields.append(ready)
        if not self._map:
            pair = (EVENT_NAME_ATTRIBUTE, event.event_name)
            fields.append(encoded.get(pair) or self._encode_attribute(pair))
        return log_record(event, event.observed_unix_nano or observed_unix_nano, fields)  # a runtime's time first

    def _completed(self, event: Event) -> bytes:
        """An event encoded ahead, with the attributes added to it since (correlation appends them): a repeated
        field may come in any number of pieces, in any place of the message."""
        assert event.wire is not None
        wire, encoded_attributes = event.wire
        if len(event.attributes) == encoded_attributes:
            return wire
        added = dict(list(event.attributes.items())[encoded_attributes:])
        mapped = self._map(added) if self._map else added
        return wire + b"".join(attribute(key, value, _serialized) for key, value in mapped.items())

    def _encode_attribute(self, pair: tuple[str, str]) -> bytes:
        """The LogRecord `attributes` field for a string attribute, as bytes, remembered (bounded)."""
        if len(self._encoded) >= _ENCODED_KEPT:
            self._encoded.clear()
        field = self._encoded[pair] = attribute(pair[0], pair[1], _serialized)
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
