"""otel-collector.yaml: every component it references is defined, every one defined is used, 2026 names only,
and the routing the gateway promises (logs to OpenObserve and Loki, metrics to OpenObserve and Prometheus)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

CONFIG_PATH = Path(__file__).resolve().parent.parent / "otel-collector.yaml"
KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")

# Component types as named by otelcol-contrib >= v0.154, and which signals each exporter takes.
CURRENT = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "resource", "transform", "attributes", "filter"},
    "exporters": {"otlp_http", "otlp_grpc", "prometheus_remote_write", "debug"},
    "extensions": {"health_check", "file_storage", "basicauth"},
    "connectors": {"routing"},
}
RENAMED_OR_REMOVED = {
    "exporters": {"otlphttp", "otlp", "prometheusremotewrite", "loki", "logging"},
    "processors": {"batch"},  # being phased out for the exporters' sending_queue.batch
}
SIGNALS = {
    "otlp_http": {"logs", "metrics", "traces"},
    "otlp_grpc": {"logs", "metrics", "traces"},
    "debug": {"logs", "metrics", "traces"},
    "prometheus_remote_write": {"metrics"},
}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def kind_of(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def pipelines(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    found: dict[str, dict[str, list[str]]] = config["service"]["pipelines"]
    return found


def defined(config: dict[str, Any]) -> set[tuple[str, str]]:
    return {(kind, name) for kind in KINDS for name in config.get(kind) or {}}


def storage_references(node: Any) -> set[str]:
    """Extension ids named inside component settings (`storage:`, `authenticator:`)."""
    if isinstance(node, dict):
        found = {v for k, v in node.items() if k in ("storage", "authenticator") and isinstance(v, str)}
        return found.union(*(storage_references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(storage_references(v) for v in node))
    return set()


def referenced(config: dict[str, Any]) -> set[tuple[str, str]]:
    refs = {("extensions", name) for name in config["service"].get("extensions", [])}
    for pipeline in pipelines(config).values():
        for kind in ("receivers", "processors", "exporters"):
            refs |= {(kind, name) for name in pipeline.get(kind, [])}
    for kind in ("receivers", "processors", "exporters"):
        for settings in (config.get(kind) or {}).values():
            refs |= {("extensions", name) for name in storage_references(settings)}
    return refs


def test_every_referenced_component_is_defined(config: dict[str, Any]) -> None:
    assert referenced(config) - defined(config) == set()


def test_every_defined_component_is_used(config: dict[str, Any]) -> None:
    assert defined(config) - referenced(config) == set()


def test_extensions_used_by_components_are_also_enabled(config: dict[str, Any]) -> None:
    enabled = set(config["service"]["extensions"])
    for kind in ("receivers", "processors", "exporters"):
        for settings in (config.get(kind) or {}).values():
            assert storage_references(settings) <= enabled


def test_only_current_component_names(config: dict[str, Any]) -> None:
    for kind in KINDS:
        for name in config.get(kind) or {}:
            assert kind_of(name) not in RENAMED_OR_REMOVED.get(kind, set()), name
            assert kind_of(name) in CURRENT[kind], name


def test_memory_limiter_comes_first_in_every_pipeline(config: dict[str, Any]) -> None:
    for name, pipeline in pipelines(config).items():
        assert pipeline["processors"][0] == "memory_limiter", name


def test_exporters_only_receive_signals_they_take(config: dict[str, Any]) -> None:
    for name, pipeline in pipelines(config).items():
        signal = name.split("/", 1)[0]
        for exporter in pipeline["exporters"]:
            assert signal in SIGNALS[kind_of(exporter)], (name, exporter)


def test_logs_reach_openobserve_and_loki_and_metrics_reach_openobserve_and_prometheus(config: dict[str, Any]) -> None:
    def destinations(signal: str) -> set[str]:
        return {
            exporter
            for name, pipeline in pipelines(config).items()
            if name.split("/", 1)[0] == signal
            for exporter in pipeline["exporters"]
        }

    assert {"otlp_http/openobserve", "otlp_http/loki"} <= destinations("logs")
    assert {"otlp_http/openobserve", "prometheus_remote_write"} <= destinations("metrics")
    assert all(pipeline["receivers"] == ["otlp"] for pipeline in pipelines(config).values())


def test_backend_queues_are_persistent_and_retry_until_delivered(config: dict[str, Any]) -> None:
    for name, settings in config["exporters"].items():
        if kind_of(name) != "otlp_http":
            continue
        queue = settings["sending_queue"]
        assert queue["enabled"] and queue["storage"].startswith("file_storage")
        assert "wait_for_result" not in queue  # the collector refuses it together with storage
        assert settings["retry_on_failure"]["max_elapsed_time"] == 0
    assert config["extensions"]["file_storage/queue"]["fsync"] is True


def test_endpoints_have_the_paths_the_backends_expect(config: dict[str, Any]) -> None:
    exporters = config["exporters"]
    assert exporters["otlp_http/loki"]["endpoint"].endswith("/otlp")  # the exporter appends /v1/logs
    assert re.search(r"/api/\$\{env:O2_ORG(:-\w+)?\}$", exporters["otlp_http/openobserve"]["endpoint"])


def test_health_check_and_own_telemetry_are_on(config: dict[str, Any]) -> None:
    assert "health_check" in config["service"]["extensions"]
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]
    assert reader["pull"]["exporter"]["prometheus"]["port"] == 8888
    assert "address" not in config["service"]["telemetry"]["metrics"]  # ignored since v0.123


def test_environment_references_use_the_env_provider_syntax() -> None:
    text = CONFIG_PATH.read_text(encoding="utf-8")
    references = re.findall(r"\$\{[^}]*\}", text)
    assert references
    for ref in references:
        assert re.fullmatch(r"\$\{env:[A-Z][A-Z0-9_]*(:-[^}]*)?\}", ref), ref
