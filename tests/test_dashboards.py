"""Dashboards and alert rules: their shape, and that every query names only what logtail really emits.

The allowed names come from the code: event names are the parsers' `Final` constants, attribute keys the
dotted string literals of the parsers, pipeline and exporter, metric names the exporter's own `Metric`
messages, translated the way each backend stores them (backends-otlp.md §1.4, §1.8, §2.3, §4.8).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
import yaml
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric

from logtail.commands.stats import OUTCOMES as REQUEST_OUTCOMES
from logtail.config import Config, OpenObserveConfig
from logtail.export.metrics import CACHE_TOKEN_TYPES, INSTRUMENTS, TOKEN_TYPES, cumulative_sum, histogram, self_metrics
from logtail.export.profiles import LOKI_LABELS
from logtail.export.users import WINDOWS
from logtail.service.selfmetrics import OUTCOMES, SelfMetrics

ROOT: Final = Path(__file__).resolve().parent.parent
DASHBOARDS: Final = ROOT / "dashboards"
GRAFANA: Final = DASHBOARDS / "grafana" / "librechat.json"
O2_DASHBOARD: Final = DASHBOARDS / "openobserve" / "librechat.json"
O2_ALERTS: Final = DASHBOARDS / "openobserve" / "alerts.json"
PROM_RULES: Final = DASHBOARDS / "grafana" / "alerts.yaml"
LOKI_RULES: Final = DASHBOARDS / "grafana" / "loki-alerts.yaml"

DOTTED: Final = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$")
STRING: Final = re.compile(r""""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'""")
WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PAIR: Final = re.compile(r"""([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|!=|=~|!~)\s*(?:"([^"]*)"|'([^']*)')""")
PROMQL_WORDS: Final = frozenset(
    [
        "sum",
        "by",
        "without",
        "increase",
        "rate",
        "delta",
        "histogram_quantile",
        "topk",
        "count_over_time",
        "and",
        "or",
        "unless",
        "on",
        "ignoring",
        "max",
        "min",
        "avg",
        "count",
        "bool",
        "offset",
        "max_over_time",
    ]
)
SQL_WORDS: Final = frozenset(
    [
        "select",
        "from",
        "where",
        "group",
        "by",
        "order",
        "as",
        "and",
        "or",
        "not",
        "is",
        "null",
        "count",
        "sum",
        "limit",
        "desc",
        "asc",
        "having",
        "histogram",
    ]
)
UNIT_WORDS: Final = {"s": "seconds", "By": "bytes", "ms": "milliseconds", "USD": "USD"}  # brace annotations are dropped
RESOURCE_LABELS: Final = frozenset({"job", "instance"})  # service.name / service.instance.id after Prometheus
LOKI_FIELDS: Final = frozenset({"event_name", "severity_text", "detected_level"})  # record fields Loki stores


# What logtail emits ---------------------------------------------------------------------------------------
def _python_files(*dirs: str) -> Iterator[Path]:
    for name in dirs:
        yield from sorted((ROOT / name).rglob("*.py"))


def event_names() -> set[str]:
    """Module-level `NAME: Final = "librechat...."` constants of the parsers (events.md §2)."""
    names = set()
    for path in _python_files("parsers"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and node.value.value.startswith("librechat.")
                and DOTTED.match(node.value.value)
            ):
                names.add(node.value.value)
    return names


def attribute_keys() -> set[str]:
    """Dotted names the parsers, the pipeline and the exporter write (events.md §3, metric attributes of §4)."""
    keys = set()
    for path in _python_files("parsers", "logtail/pipeline", "logtail/export"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED.match(node.value):
                keys.add(node.value)
    return keys


def exported_metrics() -> list[Metric]:
    """The exporter's own metric messages: LibreChat's (events.md §4) and logtail's."""
    own = SelfMetrics()
    for outcome in OUTCOMES:
        own.count_records("debug", outcome)
    own.add_bytes("debug", 1)
    own.set_lag("debug", 1)
    own.observe_export(0.1, acked=True)
    made = [
        histogram(i, [])
        if i.kind == "histogram"
        else Metric(name=i.name, unit=i.unit, gauge=Gauge())
        if i.kind == "gauge"
        else cumulative_sum(i, [])
        for i in INSTRUMENTS.values()
    ]
    return made + self_metrics(own.snapshot(), 0)


def prometheus_names(metric: Metric) -> set[str]:
    """OTLP -> Prometheus (UnderscoreEscapingWithSuffixes): dots to underscores, unit word unless already in the
    name, `_total` on monotonic sums, `_bucket`/`_sum`/`_count` series for histograms."""
    name = metric.name.replace(".", "_")
    unit = UNIT_WORDS.get(metric.unit)
    if unit and unit not in name.split("_"):
        name += "_" + unit
    kind = metric.WhichOneof("data")
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {f"{name}_total" if kind == "sum" and metric.sum.is_monotonic else name}


def openobserve_names(metric: Metric) -> set[str]:
    """OpenObserve: one stream per metric, dots to underscores, no suffixes but a histogram's series."""
    name = metric.name.replace(".", "_")
    if metric.WhichOneof("data") == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name}


def folded(keys: set[str]) -> set[str]:
    """Attribute keys as Loki, Prometheus and OpenObserve name them: every dot an underscore."""
    return {key.replace(".", "_") for key in keys}


EVENTS: Final = event_names()
ATTRIBUTES: Final = folded(attribute_keys())
METRICS: Final = exported_metrics()
PROMETHEUS: Final = set().union(*map(prometheus_names, METRICS))
OPENOBSERVE: Final = set().union(*map(openobserve_names, METRICS))
STREAM: Final = OpenObserveConfig().stream
SERVICE: Final = Config.model_fields["resource"].get_default(call_default_factory=True)["service.name"]
# Label values that come from code constants rather than from log content.
KNOWN_VALUES: Final = {
    "gen_ai_token_type": {t for _, t in (*TOKEN_TYPES, *CACHE_TOKEN_TYPES)},
    "logtail_outcome": set(OUTCOMES),
    "librechat_auth_outcome": {"success", "failure"},  # events.md §3
    "librechat_request_outcome": set(REQUEST_OUTCOMES),
    "librechat_users_window": set(WINDOWS),
}


def test_the_allowed_names_are_the_contract() -> None:
    """The sets derived from the code hold what events.md §2-§4 promise, so the checks below can bite."""
    assert len(EVENTS) == 19 and {"librechat.ban", "librechat.auth.login", "librechat.search.sync"} <= EVENTS
    assert {"client_address", "exception_type", "librechat_error_source", "gen_ai_request_model"} <= ATTRIBUTES
    assert {"librechat_tokens_total", "gen_ai_client_token_usage_bucket", "librechat_credits"} <= PROMETHEUS
    assert {"logtail_bytes_read_total", "logtail_lag_bytes", "logtail_export_duration_seconds_bucket"} <= PROMETHEUS
    assert {"librechat_tokens", "librechat_errors", "logtail_lag"} <= OPENOBSERVE
    assert "librechat_tokens" not in PROMETHEUS and "librechat_tokens_total" not in OPENOBSERVE


# Query checks ---------------------------------------------------------------------------------------------
def _names(query: str, words: frozenset[str]) -> tuple[set[str], list[str]]:
    """Identifiers of `query` outside string literals, range selectors and variables; and its string literals."""
    strings = [a or b for a, b in STRING.findall(query)]
    bare = STRING.sub(" ", query)
    bare = re.sub(r"\[[^\]]*\]|\$__\w+|\{\{[^}]*\}\}|\b\d+(?:\.\d+)?[smhdw]?\b", " ", bare)
    return {w for w in WORD.findall(bare) if w.lower() not in words}, strings


def check_values(query: str) -> None:
    for label, a, b in PAIR.findall(query):
        value = a or b
        if label in {"event_name", "otel_event_name"}:
            assert value in EVENTS, f"{value!r} is no event logtail emits: {query}"
        elif label in KNOWN_VALUES and value:
            assert value in KNOWN_VALUES[label], f"{label}={value!r} is never emitted: {query}"
    _, strings = _names(query, frozenset())
    for text in strings:
        if text.startswith("librechat.") and DOTTED.match(text):
            assert text in EVENTS, f"{text!r} is no event logtail emits: {query}"


def check_promql(query: str, metrics: set[str]) -> None:
    names, _ = _names(query, PROMQL_WORDS)
    unknown = names - metrics - ATTRIBUTES - RESOURCE_LABELS - {"le"}
    assert not unknown, f"not emitted by logtail: {sorted(unknown)} in {query}"
    assert names & metrics, f"no metric named in {query}"
    check_values(query)


def check_logql(query: str) -> None:
    selector = re.match(
        r"^\s*(?:[a-z_]+\s*\(\s*(?:\d+\s*,\s*)?)*(?:[a-z_]+\s*(?:by\s*\([^)]*\)\s*)?\(\s*)*\{([^}]*)\}", query
    )
    assert selector, f"no stream selector in {query}"
    stream_labels = {key: a or b for key, a, b in PAIR.findall(selector[1])}
    assert stream_labels == {"service_name": SERVICE}, query
    assert set(stream_labels) <= folded(set(LOKI_LABELS))
    names, _ = _names(query.replace(selector[0], selector[0].replace(selector[1], "")), PROMQL_WORDS)
    unknown = names - ATTRIBUTES - LOKI_FIELDS
    assert not unknown, f"not emitted by logtail: {sorted(unknown)} in {query}"
    assert re.search(r'\| event_name="', query), f"every log query picks its events: {query}"
    check_values(query)


def check_sql(query: str, stream: str) -> None:
    from_ = re.search(r'\bFROM "([^"]+)"', query)
    assert from_ and from_[1] == stream, query
    aliases = set(re.findall(r"\bAS (\w+)", query))
    names, _ = _names(query.replace(from_[0], "FROM"), SQL_WORDS)
    unknown = names - ATTRIBUTES - aliases - {"_timestamp"}
    assert not unknown, f"not emitted by logtail: {sorted(unknown)} in {query}"
    assert "otel_event_name = '" in query, f"every log query picks its events: {query}"
    check_values(query)


# Grafana --------------------------------------------------------------------------------------------------
def load(path: Path) -> Any:
    return orjson.loads(path.read_bytes()) if path.suffix == ".json" else yaml.safe_load(path.read_text())


def grafana_targets() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in load(GRAFANA)["panels"]:
        for target in panel["targets"]:
            yield panel, target


def test_grafana_dashboard_shape_and_datasources() -> None:
    dash = load(GRAFANA)
    assert {"uid", "title", "panels", "schemaVersion", "templating", "time"} <= set(dash)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    inputs = {i["name"]: i for i in dash["__inputs"]}
    ids = [panel["id"] for panel in dash["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        assert {"id", "type", "title", "datasource", "targets", "gridPos"} <= set(panel), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        area = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
        for source in (panel["datasource"], *(t["datasource"] for t in panel["targets"])):
            name = re.fullmatch(r"\$\{(\w+)\}", source["uid"])
            assert name, source
            assert variables[name[1]]["type"] == "datasource" and variables[name[1]]["query"] == source["type"]
            assert inputs[name[1]]["pluginId"] == source["type"]
        assert {t["datasource"]["type"] for t in panel["targets"]} == {panel["datasource"]["type"]}


def test_grafana_queries_name_only_what_logtail_emits() -> None:
    kinds = set()
    for _, target in grafana_targets():
        kinds.add(target["datasource"]["type"])
        if target["datasource"]["type"] == "prometheus":
            check_promql(target["expr"], PROMETHEUS)
        else:
            check_logql(target["expr"])
    assert kinds == {"prometheus", "loki"}


def test_openobserve_dashboard_shape_and_queries() -> None:
    dash = load(O2_DASHBOARD)
    assert dash["version"] == 8 and {"title", "tabs", "dashboardId"} <= set(dash)
    panels = [panel for tab in dash["tabs"] for panel in tab["panels"]]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert {"id", "type", "title", "queryType", "queries", "layout", "config"} <= set(panel)
        assert panel["layout"]["i"] == ids.index(panel["id"]) + 1
        assert isinstance(panel["config"]["show_legends"], bool) and isinstance(panel["description"], str)
        for query in panel["queries"]:
            # Fields OpenObserve's v8 model requires (src/config/src/meta/dashboards/v8/mod.rs).
            assert isinstance(query["customQuery"], bool) and isinstance(query["config"]["promql_legend"], str)
            fields = query["fields"]
            assert isinstance(fields["x"], list) and isinstance(fields["y"], list)
            assert {"filterType", "logicalOperator", "conditions"} <= set(fields["filter"])
            if panel["queryType"] == "sql":
                assert fields["stream_type"] == "logs" and fields["stream"] == STREAM
                check_sql(query["query"], STREAM)
            else:
                assert panel["queryType"] == "promql" and fields["stream_type"] == "metrics"
                assert fields["stream"] in OPENOBSERVE and fields["stream"] in query["query"]
                check_promql(query["query"], OPENOBSERVE)


@pytest.mark.parametrize(
    "topic",
    [
        r"librechat_tokens\w*\[.*gen_ai_request_model|by \(gen_ai_request_model\) \(increase\(librechat_tokens",
        r"librechat_credits",
        r"librechat_errors\w*\[|by \(librechat_error_source\)",
        r"librechat\.auth\.login|librechat_auth_logins",
        r"librechat\.ban|librechat_bans",
        r"librechat_search_documents|librechat\.search\.error",
        r"librechat_users_active\{librechat_users_window=\"day\"\}",
        r"by \(gen_ai_request_model\) \(increase\(librechat_requests(_total)?\[",
        r"by \(gen_ai_request_model\) \(delta\(librechat_cost(_USD)?\[",
        r"by \(librechat_endpoint, librechat_request_outcome\) \(increase\(librechat_requests_completed",
        r"librechat_request_outcome=\"error\".*/ sum by \(librechat_endpoint\)",
        r"histogram_quantile\(0\.95, sum by \(le\) \(rate\(librechat_request_duration(_seconds)?_bucket",
    ],
)
def test_both_dashboards_cover_the_topic(topic: str) -> None:
    o2 = [q["query"] for tab in load(O2_DASHBOARD)["tabs"] for p in tab["panels"] for q in p["queries"]]
    grafana = [t["expr"] for _, t in grafana_targets()]
    assert any(re.search(topic, q) for q in grafana), topic
    assert any(re.search(topic, q) for q in o2), topic


# Alerts ---------------------------------------------------------------------------------------------------
def rules(path: Path) -> list[dict[str, Any]]:
    doc = load(path)
    assert set(doc) == {"groups"}
    found = []
    for group in doc["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
            assert rule["alert"] and rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"]
            assert re.fullmatch(r"\d+[smh]", rule.get("for", "1m"))
            found.append(rule)
    names = [r["alert"] for r in found]
    assert len(names) == len(set(names))
    return found


def test_prometheus_rules_shape_and_queries() -> None:
    found = rules(PROM_RULES)
    for rule in found:
        check_promql(rule["expr"], PROMETHEUS)
        assert re.search(r"[<>]=? *\d+$", rule["expr"]), "an alert compares with a threshold"
    exprs = " ".join(r["expr"] for r in found)
    assert "librechat_errors_total" in exprs and "librechat_bans_total" in exprs
    assert 'librechat_auth_logins_total{librechat_auth_outcome="failure"}' in exprs


def test_loki_rules_shape_and_queries() -> None:
    found = rules(LOKI_RULES)
    for rule in found:
        check_logql(rule["expr"])
    assert any("client_address" in r["expr"] and "librechat.auth.login" in r["expr"] for r in found)


def test_openobserve_alerts_shape_and_queries() -> None:
    alerts = load(O2_ALERTS)
    assert isinstance(alerts, list)
    names = [a["name"] for a in alerts]
    assert len(names) == len(set(names)) == 3
    for alert in alerts:
        assert alert["stream_type"] == "logs" and alert["stream_name"] == STREAM
        assert alert["query_condition"]["type"] == "sql"
        check_sql(alert["query_condition"]["sql"], STREAM)
        trigger = alert["trigger_condition"]
        assert {"period", "operator", "threshold", "frequency", "silence"} <= set(trigger)
        assert trigger["operator"] in {"=", "!=", ">", ">=", "<", "<="}
        assert alert["destinations"] and alert["enabled"] is True
        for column in re.findall(r"\{(\w+)\}", alert["row_template"]):
            assert re.search(rf"\b{column}\b", alert["query_condition"]["sql"]), column
    events = " ".join(a["query_condition"]["sql"] for a in alerts)
    for event in ("librechat.error", "librechat.ban", "librechat.auth.login"):
        assert f"'{event}'" in events


@pytest.mark.parametrize(
    "bad",
    [
        "sum(increase(librechat_token_total[5m]))",  # misspelt metric
        "sum by (model) (increase(librechat_tokens_total[5m]))",  # attribute logtail does not write
        'sum(increase(librechat_tokens_total{gen_ai_token_type="reasoning"}[5m]))',  # value never emitted
        "sum(increase(librechat_tokens[5m]))",  # OpenObserve's name, not Prometheus'
    ],
)
def test_the_promql_check_catches_names_logtail_does_not_emit(bad: str) -> None:
    with pytest.raises(AssertionError):
        check_promql(bad, PROMETHEUS)


@pytest.mark.parametrize(
    "bad",
    [
        '{service_name="librechat"} | event_name="librechat.login"',
        '{service_name="librechat", user_id="x"} | event_name="librechat.ban"',
        'sum by (ip) (count_over_time({service_name="librechat"} | event_name="librechat.ban" [5m]))',
        '{service_name="librechat"}',
    ],
)
def test_the_logql_check_catches_names_logtail_does_not_emit(bad: str) -> None:
    with pytest.raises(AssertionError):
        check_logql(bad)


def test_the_sql_check_catches_names_logtail_does_not_emit() -> None:
    with pytest.raises(AssertionError):
        check_sql("SELECT COUNT(*) AS n FROM \"librechat\" WHERE otel_event_name = 'librechat.bans'", STREAM)
    with pytest.raises(AssertionError):
        check_sql("SELECT user_ip FROM \"librechat\" WHERE otel_event_name = 'librechat.ban'", STREAM)
