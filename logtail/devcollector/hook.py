"""rotel processor hook: writes every received log record and metric point as one JSON line.

rotel loads this file into its embedded interpreter (the system Python, standard library only)
and calls `process_logs` / `process_metrics` per request. The output path comes from the
LOGTAIL_COLLECTOR_OUT environment variable of the rotel process.

With LOGTAIL_COLLECTOR_COUNT=1 (the benchmark) it writes one line per request instead: how many records
or points arrived, their body bytes, and each record's delay from its own timestamp to its arrival in
milliseconds (counted per millisecond), so the receiver stays cheap however fast the sender is.
"""

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

_OUT = os.environ.get("LOGTAIL_COLLECTOR_OUT", "received.jsonl")
_LOCK = threading.Lock()
_COUNT_ONLY = os.environ.get("LOGTAIL_COLLECTOR_COUNT") == "1"


def _value(v: Any) -> Any:
    if v is None:
        return None
    inner = v.value
    kind = type(inner).__name__
    if kind == "ArrayValue":
        return [_value(inner[i]) for i in range(len(inner))]
    if kind == "KeyValueList":
        return {inner[i].key: _value(inner[i].value) for i in range(len(inner))}
    if isinstance(inner, bytes):
        return inner.hex()
    return inner


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _write(rows: list[dict[str, Any]]) -> None:
    with _LOCK, open(_OUT, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _guarded(resource: Any, process: Callable[[Any], None]) -> None:
    try:
        process(resource)
    except Exception as exc:  # an exception here would take the whole collector down
        _write([{"signal": "hook_error", "error": repr(exc)}])


def process_logs(resource_logs: Any) -> None:
    _guarded(resource_logs, _process_logs)


def _count_logs(resource_logs: Any) -> None:
    now = time.time_ns()
    records = body_bytes = 0
    delays: dict[int, int] = {}
    for sl in resource_logs.scope_logs:
        for lr in sl.log_records:
            records += 1
            delay = (now - lr.time_unix_nano) // 1_000_000
            delays[delay] = delays.get(delay, 0) + 1
            body = lr.body.value if lr.body is not None else None
            if isinstance(body, str):
                body_bytes += len(body)
    _write([{"signal": "log_count", "records": records, "bytes": body_bytes, "delay_ms": delays}])


def _process_logs(resource_logs: Any) -> None:
    if _COUNT_ONLY:
        _count_logs(resource_logs)
        return
    resource = _attrs(resource_logs.resource.attributes) if resource_logs.resource else {}
    rows: list[dict[str, Any]] = []
    for sl in resource_logs.scope_logs:
        scope = sl.scope.name if sl.scope else ""
        for lr in sl.log_records:
            rows.append(
                {
                    "signal": "log",
                    "resource": resource,
                    "scope": scope,
                    "time_unix_nano": lr.time_unix_nano,
                    "observed_time_unix_nano": lr.observed_time_unix_nano,
                    "severity_number": int(lr.severity_number),
                    "severity_text": lr.severity_text,
                    "event_name": lr.event_name,
                    "body": _value(lr.body),
                    "attributes": _attrs(lr.attributes),
                }
            )
    _write(rows)


def _points(metric: Any) -> Iterator[dict[str, Any]]:
    data = metric.data
    kind = type(data).__name__.split("_")[-1].lower()
    inner = data[0]
    for dp in inner.data_points:
        row: dict[str, Any] = {
            "signal": "metric",
            "name": metric.name,
            "unit": metric.unit,
            "kind": kind,
            "attributes": _attrs(dp.attributes),
            "time_unix_nano": dp.time_unix_nano,
            "start_time_unix_nano": dp.start_time_unix_nano,
        }
        if kind == "histogram":
            row.update(
                count=dp.count,
                sum=dp.sum,
                bucket_counts=list(dp.bucket_counts),
                explicit_bounds=list(dp.explicit_bounds),
            )
        else:
            value = dp.value
            row["value"] = value[0] if type(value).__name__.startswith("NumberDataPointValue") else value
        if kind in ("sum", "histogram"):
            row["temporality"] = int(getattr(inner, "aggregation_temporality", 0))
        if kind == "sum":
            row["is_monotonic"] = bool(inner.is_monotonic)
        yield row


def process_metrics(resource_metrics: Any) -> None:
    _guarded(resource_metrics, _process_metrics)


def _process_metrics(resource_metrics: Any) -> None:
    if _COUNT_ONLY:
        points = sum(len(metric.data[0].data_points) for sm in resource_metrics.scope_metrics for metric in sm.metrics)
        _write([{"signal": "metric_count", "points": points}])
        return
    resource = _attrs(resource_metrics.resource.attributes) if resource_metrics.resource else {}
    rows: list[dict[str, Any]] = []
    for sm in resource_metrics.scope_metrics:
        for metric in sm.metrics:
            for row in _points(metric):
                row["resource"] = resource
                rows.append(row)
    _write(rows)
