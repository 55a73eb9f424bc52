"""Backend profiles: the URL, headers, resource and attribute names each backend gets (backends-otlp.md)."""

from __future__ import annotations

import base64
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from test_export import sample_events

from logtail.config import Config, ConfigError, load_config
from logtail.devcollector.collector import DevCollector
from logtail.export import build_sink
from logtail.export.profiles import LOKI_LABELS, O2Attributes, destination
from logtail.service.selfmetrics import SelfMetrics


def config(*overrides: str, env: dict[str, str] | None = None) -> Config:
    return load_config(None, env=env or {}, overrides=["source.logs_dir=/srv/logs", *overrides])


def test_otlp_sends_to_the_standard_paths_with_the_configured_headers() -> None:
    dest = destination(config("export.headers=x-a=1", "resource=service.name=librechat,service.namespace=chat"))
    assert dest.logs.url == "http://localhost:4318/v1/logs"
    assert dest.metrics is not None and dest.metrics.url == "http://localhost:4318/v1/metrics"
    assert dest.headers == {"x-a": "1"}
    assert dest.resource["service.name"] == "librechat"
    assert dest.resource["service.namespace"] == "chat"
    assert dest.resource["host.name"]
    # The same host and log directory keep their instance id across restarts.
    assert dest.resource["service.instance.id"] == destination(config()).resource["service.instance.id"]
    assert dest.attribute_map is None


def test_otlp_resource_attributes_come_from_the_environment_too() -> None:
    env = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod,host.name=web-1", "OTEL_SERVICE_NAME": "lc"}
    resource = destination(config(env=env)).resource
    assert (resource["deployment.environment.name"], resource["host.name"], resource["service.name"]) == (
        "prod",
        "web-1",
        "lc",
    )


def test_openobserve_adds_the_org_path_basic_auth_and_the_stream() -> None:
    dest = destination(
        config(
            "export.profile=openobserve",
            "export.endpoint=https://o2.example.com",
            "export.openobserve.org=acme",
            "export.openobserve.user=acme",
            "export.openobserve.password=o2oi_token",
        )
    )
    assert dest.logs.url == "https://o2.example.com/api/acme/v1/logs"
    assert dest.metrics is not None and dest.metrics.url == "https://o2.example.com/api/acme/v1/metrics"
    assert dest.headers == {
        "Authorization": "Basic " + base64.b64encode(b"acme:o2oi_token").decode(),
        "stream-name": "librechat",
    }


def test_openobserve_keeps_an_explicit_org_path_and_explicit_headers() -> None:
    dest = destination(
        config(
            "export.profile=openobserve",
            "export.endpoint=https://o2.example.com/api/prod",
            "export.openobserve.user=u",
            "export.openobserve.password=p",
            "export.headers=Authorization=Basic%20given,stream-name=other",
        )
    )
    assert dest.logs.url == "https://o2.example.com/api/prod/v1/logs"
    assert dest.headers == {"Authorization": "Basic given", "stream-name": "other"}


def test_openobserve_over_grpc_names_the_organization() -> None:
    dest = destination(config("export.profile=openobserve", "export.endpoint=https://o2:5081", "export.protocol=grpc"))
    assert (dest.logs.grpc_target, dest.logs.secure) == ("o2:5081", True)
    assert dest.headers == {"stream-name": "librechat", "organization": "default"}


def test_openobserve_attribute_names_survive_its_flattening() -> None:
    fold = O2Attributes({"service.name": "librechat", "host.name": "h"})
    assert fold({"gen_ai.usage.input_tokens": 5, "user.id": "u1", "user_id": "u2", "body": "b", "host.name": "x"}) == {
        "gen_ai_usage_input_tokens": 5,
        "user_id": "u1",
        "user_id_": "u2",  # would otherwise be lost: OpenObserve keeps the last of equal column names
        "attr_body": "b",  # would overwrite the record body
        "attr_host_name": "x",  # would overwrite the resource attribute
    }


def test_loki_uses_its_otlp_path_tenant_and_only_label_worthy_resource_attributes() -> None:
    dest = destination(
        config(
            "export.profile=loki",
            "export.endpoint=http://loki:3100",
            "export.loki.tenant=team-a",
            "resource=service.name=librechat,deployment.environment.name=prod,service.instance.id=i-1",
        )
    )
    assert dest.logs.url == "http://loki:3100/otlp/v1/logs"
    assert dest.headers == {"X-Scope-OrgID": "team-a"}
    assert set(dest.resource) == {"service.name", "deployment.environment.name"} <= LOKI_LABELS
    assert dest.attribute_map is not None
    moved: dict[str, Any] = dict(dest.attribute_map({"user.id": "u"}))
    assert moved == {"service.instance.id": "i-1", "host.name": moved["host.name"], "user.id": "u"}
    assert dest.metrics is None
    assert len(dest.notes) == 1 and "metrics are not exported" in dest.notes[0]


def test_loki_metrics_go_to_a_separate_endpoint() -> None:
    dest = destination(
        config(
            "export.profile=loki", "export.endpoint=http://loki:3100/otlp", "export.metrics_endpoint=http://mimir/otlp"
        )
    )
    assert dest.logs.url == "http://loki:3100/otlp/v1/logs"
    assert dest.metrics is not None and dest.metrics.url == "http://mimir/otlp/v1/metrics"
    assert dest.notes == []


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (["export.profile=loki", "export.protocol=grpc"], "export.protocol (--set export.protocol): Loki accepts"),
        (["export.openobserve.user=u"], "export.openobserve (--set export.openobserve.user): user and password go"),
        (["export.profile=collector"], "export.profile (--set export.profile): Input should be 'otlp', "),
    ],
)
def test_profile_mistakes_are_one_line_each(overrides: list[str], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        config(*overrides)
    assert len(error.value.problems) == 1
    assert error.value.problems[0].startswith(problem)


def ship_samples(cfg: Config, samples: Path, tmp_path: Path) -> int:
    sink = build_sink(cfg, self_metrics=SelfMetrics(), stop=threading.Event(), dead_letter_path=tmp_path / "dead")
    events = sample_events(samples)
    sink.ship(events)
    sink.close()
    return sink.summary.acknowledged


def test_openobserve_profile_over_the_wire(samples: Path, tmp_path: Path) -> None:
    with DevCollector(tmp_path / "c", "/api/acme/v1/logs", "/api/acme/v1/metrics") as collector:
        cfg = config(
            "export.profile=openobserve", f"export.endpoint={collector.http_endpoint}", "export.openobserve.org=acme"
        )
        sent = ship_samples(cfg, samples, tmp_path)
        logs = collector.wait_for_logs(sent)
        assert len(logs) == sent
        assert len({r["attributes"]["log_record_uid"] for r in logs}) == sent
        assert all(r["attributes"]["otel_event_name"] == r["event_name"] for r in logs)
        assert all(key == key.lower() and "." not in key for r in logs for key in r["attributes"])
        assert {p["name"] for p in collector.metrics()} >= {"librechat.tokens", "logtail.records"}


def test_loki_profile_over_the_wire(samples: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with DevCollector(tmp_path / "c", "/otlp/v1/logs") as collector:
        cfg = config("export.profile=loki", f"export.endpoint={collector.http_endpoint}")
        with caplog.at_level(logging.WARNING):
            sent = ship_samples(cfg, samples, tmp_path)
        logs = collector.wait_for_logs(sent)
        assert len(logs) == sent
        assert all(set(r["resource"]) <= LOKI_LABELS for r in logs)
        assert all(r["attributes"]["host.name"] for r in logs)
        assert collector.metrics() == []
        assert sum("metrics are not exported" in r.message for r in caplog.records) == 1
