"""Backend profiles (export.profile): where requests go, which headers they carry, and how resource and record
attributes are shaped so that each backend stores them usefully (backends-otlp.md §1, §2).
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from logtail.config import Config
from logtail.export.encode import AttributeMap
from logtail.export.transport import Signal

log = logging.getLogger(__name__)

PATHS: Final[dict[Signal, str]] = {"logs": "/v1/logs", "metrics": "/v1/metrics"}
# Loki turns these resource attributes into stream labels; everything else on the resource would become
# labels too (host, instance ids: unbounded), so the loki profile moves those onto the records instead.
LOKI_LABELS: Final = frozenset({"service.name", "service.namespace", "deployment.environment.name"})
# Column names OpenObserve fills itself; a record attribute folding to one of them would overwrite it.
O2_RESERVED: Final = frozenset(
    {
        "body",
        "severity",
        "_timestamp",
        "trace_id",
        "span_id",
        "dropped_attributes_count",
        "_all",
        "_original",
        "instrumentation_library_name",
        "instrumentation_library_version",
    }
)
_O2_FOLD: Final = re.compile(r"[^a-z0-9_]")
# Keys come from log content (leftover metadata), so the cache of their folded names is bounded.
KEY_CACHE_CAP: Final = 10_000
# A stable namespace for service.instance.id, so the same host and log directory keep one id across restarts.
_INSTANCE_NAMESPACE: Final = uuid.UUID("0b9d3f4e-3c1a-4a52-9a0e-6c1e5b7d2f10")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one signal goes: the full URL for HTTP, `host:port` and TLS for gRPC."""

    url: str
    grpc_target: str
    secure: bool


@dataclass(frozen=True, slots=True)
class Destination:
    logs: Endpoint
    metrics: Endpoint | None  # None: metrics are not exported (loki without export.metrics_endpoint)
    headers: dict[str, str]
    resource: dict[str, Any]
    attribute_map: AttributeMap | None = None
    notes: list[str] = field(default_factory=list)  # said once at start-up


def _endpoint(base: str, signal: Signal) -> Endpoint:
    parts = urllib.parse.urlsplit(base)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    return Endpoint(base + PATHS[signal], f"{parts.hostname}:{port}", secure)


def resource_attributes(config: Config) -> dict[str, Any]:
    """The configured resource (which already holds OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME) plus
    host.name and a stable service.instance.id when the configuration does not name them."""
    resource: dict[str, Any] = dict(config.resource)
    host = socket.gethostname()
    resource.setdefault("host.name", host)
    resource.setdefault("service.instance.id", str(uuid.uuid5(_INSTANCE_NAMESPACE, f"{host}:{config.source.logs_dir}")))
    return resource


def o2_fold(key: str) -> str:
    """OpenObserve's column name for an attribute key (`format_key`: lowercase, other characters to `_`)."""
    return _O2_FOLD.sub("_", key.lower())


class O2Attributes:
    """Sends attribute keys already folded the way OpenObserve folds them, so that what is sent is what is
    queried, and renames keys that would collide with a fixed column, a resource attribute or each other
    (OpenObserve would silently keep only the last of them)."""

    def __init__(self, resource_keys: Mapping[str, Any]) -> None:
        self._taken = O2_RESERVED | {o2_fold(key) for key in resource_keys}
        self._cache: dict[str, str] = {}

    def _column(self, key: str) -> str:
        column = self._cache.get(key)
        if column is None:
            column = o2_fold(key)
            if column in self._taken:
                column = f"attr_{column}"
            if len(self._cache) < KEY_CACHE_CAP:
                self._cache[key] = column
        return column

    def __call__(self, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
        column = self._column
        folded = {column(key): value for key, value in attributes.items()}
        if len(folded) == len(attributes):
            return folded
        folded = {}
        for key, value in attributes.items():
            name = column(key)
            while name in folded:
                name += "_"
            folded[name] = value
        return folded


def destination(config: Config) -> Destination:
    """Where and how to export, for the configured profile."""
    export = config.export
    headers = dict(export.headers)
    resource = resource_attributes(config)
    metrics_base = export.metrics_endpoint or export.endpoint
    if export.profile == "openobserve":
        o2 = export.openobserve
        base = (
            export.endpoint
            if "/api/" in urllib.parse.urlsplit(export.endpoint).path
            else (f"{export.endpoint}/api/{o2.org}")
        )
        if export.metrics_endpoint is None:
            metrics_base = base
        lower = {key.lower() for key in headers}
        if o2.user is not None and o2.password is not None and "authorization" not in lower:
            token = base64.b64encode(f"{o2.user}:{o2.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if "stream-name" not in lower:
            headers["stream-name"] = o2.stream
        if export.protocol == "grpc" and "organization" not in lower:
            headers["organization"] = o2.org
        return Destination(
            _endpoint(base, "logs"), _endpoint(metrics_base, "metrics"), headers, resource, O2Attributes(resource)
        )
    if export.profile == "loki":
        base = export.endpoint if export.endpoint.endswith("/otlp") else f"{export.endpoint}/otlp"
        if export.loki.tenant is not None and "x-scope-orgid" not in {key.lower() for key in headers}:
            headers["X-Scope-OrgID"] = export.loki.tenant
        labels = {key: value for key, value in resource.items() if key in LOKI_LABELS}
        moved = {key: value for key, value in resource.items() if key not in LOKI_LABELS}
        notes = []
        if export.metrics_endpoint is None:
            notes.append(
                "export.profile=loki and no export.metrics_endpoint: Loki takes no metrics, so metrics are "
                "not exported; set export.metrics_endpoint to an OTLP metrics receiver (Mimir, Prometheus)"
            )
        return Destination(
            _endpoint(base, "logs"),
            _endpoint(export.metrics_endpoint, "metrics") if export.metrics_endpoint else None,
            headers,
            labels,
            (lambda attributes: {**moved, **attributes}) if moved else None,
            notes,
        )
    return Destination(_endpoint(export.endpoint, "logs"), _endpoint(metrics_base, "metrics"), headers, resource)
