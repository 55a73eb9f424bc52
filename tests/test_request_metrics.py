"""Active users, requests, cost and outcomes: `logtail stats --json` and the metrics a real collector received
after a replay both equal numbers computed here straight from each sample's expected.jsonl (the logger calls),
without logtail's parsers. No identifier is ever a metric attribute."""

from __future__ import annotations

import calendar
import re
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from logtail.commands import demo
from logtail.config import MetricsConfig
from logtail.devcollector.collector import DevCollector
from logtail.export.metrics import KEYS_KEPT, Aggregator
from logtail.export.users import EXACT, HyperLogLog, user_hash
from parsers.event import Event
from tests.test_stats import LOGTAIL, calls

CORPORA = ("v0.7", "v0.8", "v0.8.1")
UNKNOWN = "(unknown)"
CREDITS_PER_USD = 1_000_000
SAME_FLOW_S = 60.0  # a check and the spending of one request without request ids: seconds apart at most
# Call sites of stream errors, and the tag their written record keeps when the log still says what failed.
STREAM_ERRORS = {"stream.handleAbortError": "[handleAbortError]", "abortMessage.handle_error": "[abortMessage]"}
CONVERSATION_SITES = ("abortMessage", "stream.google_censor")  # name the conversation: abort key, message
OBJECT_ID = re.compile(r"\b[0-9a-f]{24}\b")
CONTEXT = re.compile(r"Context: (.*?) \| Token usage")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
IDS = ("user.id", "gen_ai.conversation.id", "librechat.request.id", "librechat.abort_key")


def _written(call: dict[str, Any]) -> str:
    """The text of the record that counts: the error file's for error-level calls, else the debug header."""
    logged = call.get("logged", {})
    return str(logged.get("error_message" if call["level"] == "error" else "debug_header", call["message"]))


def _seconds(call: dict[str, Any]) -> float:
    stamp = call["timestamp"]
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + float(stamp[19:-1] or 0)


def truth(samples: Path, corpus: str) -> dict[str, Any]:
    """The numbers, from the logger calls: a request's model is its balance check's, found by request id, else
    the latest check of the same log stream a minute before, else the conversation's (events.md §3)."""
    users: defaultdict[str, set[str]] = defaultdict(set)
    requests: Counter[tuple[str, str]] = Counter()
    cost: defaultdict[str, float] = defaultdict(float)
    by_endpoint: Counter[tuple[str, str]] = Counter()
    durations: list[float] = []  # a check and the response of the same request: by request id or in the same file
    by_request: dict[str, dict[str, str]] = {}
    checks: dict[str, float] = {}
    last_check: dict[str, tuple[float, dict[str, str]]] = {}
    by_conversation: dict[str, dict[str, str]] = {}
    for call in calls(samples, corpus):
        site, meta, day = call["call_site"], call["meta"], call["timestamp"][:10]
        first = meta[0] if meta and isinstance(meta[0], dict) else {}
        named = set(OBJECT_ID.findall(_written(call)))
        named |= {u for u in (first.get("user"), call.get("context", {}).get("userId")) if isinstance(u, str)}
        users[day] |= named
        request = call.get("context", {}).get("requestId")
        header = call.get("logged", {}).get("debug_header", "")
        if request and call["level"] != "error" and header.endswith("[truncated]") and request not in header:
            request = None  # the debug header carries the request context (v0.8), unless it was cut off
        # The log stream of the call's debug record (else its first): its directory and family (size rotations
        # are one stream). An error-file record takes the join of its debug-file copy, which has the same
        # time, unless its time is not logged (v0.7's error file).
        files = [f["file"] for f in call["files"]]
        file = next((f for f in files if "/debug-" in f), files[0] if files else "")
        file = re.sub(r"-\d{4}-\d\d-\d\d\.log.*$", "", file)
        copy_joins = not (corpus == "v0.7" and call["level"] == "error")
        if site == "Balance.check" and "model" in first:
            found = {"model": first["model"], "endpoint": first["endpoint"]}
            if request is None:
                last_check[file] = (_seconds(call), found)
            else:
                by_request[request] = found
                checks[request] = _seconds(call)
            continue
        conversation = UUID.search(call["message"]) if site.endswith(".usage") or site in CONVERSATION_SITES else None
        in_conversation = by_conversation.get(conversation[0]) if conversation else None
        recent = file in last_check and 0 <= _seconds(call) - last_check[file][0] <= SAME_FLOW_S and copy_joins
        checked = None
        if request is not None:
            joined = by_request.get(request)
            checked = checks.get(request) if joined else None
        elif call["level"] == "error":  # the error file's record: its own conversation, else its copy's join
            joined = in_conversation or (last_check[file][1] if recent else None)
        elif recent:
            checked, joined = last_check[file]
        else:
            joined = in_conversation
        endpoint = joined["endpoint"] if joined else UNKNOWN
        if site.endswith((".usage", ".record")):
            if joined and conversation:
                by_conversation[conversation[0]] = joined
            model = joined["model"] if joined else UNKNOWN
            context = CONTEXT.search(call["message"])
            if site.endswith(".usage") and context and context[1] == "message":
                requests[model, day] += 1
                by_endpoint[endpoint, "completed"] += 1
                if checked is not None:
                    durations.append(_seconds(call) - checked)
            elif site.endswith(".record"):
                spent = sum(first.get(part) or 0 for part in ("prompt", "completion"))
                cost[model] += -spent / CREDITS_PER_USD
        elif site == "abortMessage" and "Aborted request" in call["message"]:
            by_endpoint[endpoint, "aborted"] += 1
        elif site == "violation.token_balance":
            by_endpoint[endpoint, "insufficient_balance"] += 1
        elif site == "stream.google_censor" or (site in STREAM_ERRORS and STREAM_ERRORS[site] in _written(call)):
            by_endpoint[endpoint, "error"] += 1
    outcomes: Counter[str] = Counter()
    for (_, outcome), n in by_endpoint.items():
        outcomes[outcome] += n
    days = sorted(users)
    return {
        "users": {day: len(users[day]) for day in days},
        "requests": {key: n for key, n in requests.items()},
        "cost": {model: round(usd, 6) for model, usd in cost.items()},
        "outcomes": dict(outcomes),
        "by_endpoint": dict(by_endpoint),
        "durations": durations,
    }


def stats_numbers(samples: Path, corpus: str) -> dict[str, Any]:
    done = subprocess.run(
        [LOGTAIL, "stats", str(samples / corpus), "--json"], capture_output=True, check=True, timeout=120
    )
    doc = orjson.loads(done.stdout)
    return {
        "users": doc["active_users"]["by_day"],
        "requests": {
            (m, day): n for m, r in doc["requests"]["by_model"].items() for day, n in r["by_day"].items() if n
        },
        "cost": {m: c["total"] for m, c in doc["cost_usd"]["by_model"].items() if c["total"]},
        "outcomes": {o: n for o, n in doc["outcomes"]["total"].items() if n},
        "by_endpoint": {(e, o): n for e, c in doc["outcomes"]["by_endpoint"].items() for o, n in c.items() if n},
    }


def _day(nanos: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(nanos // 1_000_000_000))


def _per_day(points: list[dict[str, Any]]) -> dict[tuple[tuple[tuple[str, Any], ...], str], float]:
    """The increase of each cumulative series within each UTC day of its points' times."""
    last: dict[tuple[tuple[str, Any], ...], dict[str, float]] = defaultdict(dict)
    for point in points:  # cumulative: per series and day, the last point received holds the day's total
        last[tuple(sorted(point["attributes"].items()))][_day(point["time_unix_nano"])] = point["value"]
    increase: defaultdict[tuple[tuple[tuple[str, Any], ...], str], float] = defaultdict(float)
    for series, by_day in last.items():
        before = 0.0
        for day in sorted(by_day):
            increase[series, day] = by_day[day] - before
            before = by_day[day]
    return increase


def collector_numbers(collector: DevCollector, workdir: Path, corpus: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(demo, "CORPORA", (corpus,))
    result = demo.replay_samples(collector, workdir)
    assert not result.problems and not result.gave_up
    deadline = time.monotonic() + demo.METRIC_WAIT
    while time.monotonic() < deadline:  # the final export arrives last
        points = [p for p in collector.metrics() if p.get("resource", {}).get("service.name") != "logtail"]
        if any(p["name"] == "librechat.users.active" for p in points) and result.summary.acknowledged:
            time.sleep(0.5)
            break
        time.sleep(0.1)
    points = [p for p in collector.metrics() if p["name"].startswith("librechat.")]
    users: dict[str, float] = {}
    for point in points:
        if point["name"] == "librechat.users.active" and point["attributes"] == {"librechat.users.window": "day"}:
            users[_day(point["start_time_unix_nano"])] = point["value"]
    requests: Counter[tuple[str, str]] = Counter()
    for (series, day), n in _per_day([p for p in points if p["name"] == "librechat.requests"]).items():
        requests[dict(series).get("gen_ai.request.model", UNKNOWN), day] += int(n)
    cost: defaultdict[str, float] = defaultdict(float)
    for (series, _), usd in _per_day([p for p in points if p["name"] == "librechat.cost"]).items():
        cost[dict(series).get("gen_ai.request.model", UNKNOWN)] += usd
    by_endpoint: Counter[tuple[str, str]] = Counter()
    for (series, _), n in _per_day([p for p in points if p["name"] == "librechat.requests.completed"]).items():
        attributes = dict(series)
        by_endpoint[attributes.get("librechat.endpoint", UNKNOWN), attributes["librechat.request.outcome"]] += int(n)
    outcomes: Counter[str] = Counter()
    for (_, outcome), n in by_endpoint.items():
        outcomes[outcome] += n
    return points, {
        "users": users,
        "requests": {key: n for key, n in requests.items() if n},
        "cost": {m: round(usd, 6) for m, usd in cost.items() if round(usd, 6)},
        "outcomes": dict(outcomes),
        "by_endpoint": {key: n for key, n in by_endpoint.items() if n},
    }


@pytest.mark.parametrize("corpus", CORPORA)
def test_stats_and_collector_equal_the_ground_truth(
    samples: Path, corpus: str, collector: DevCollector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (samples / corpus).is_dir():
        pytest.skip(f"{corpus} is not among the fixtures")
    expected = truth(samples, corpus)
    from_stats = stats_numbers(samples, corpus)
    points, received = collector_numbers(collector, tmp_path / "replay", corpus, monkeypatch)
    for key in ("users", "requests", "outcomes", "by_endpoint"):
        assert from_stats[key] == expected[key], key
        assert received[key] == expected[key], key
    assert from_stats["cost"] == pytest.approx(expected["cost"], abs=1e-5)
    assert received["cost"] == pytest.approx(expected["cost"], abs=1e-5)

    names = {p["name"] for p in points}
    assert {"librechat.requests", "librechat.cost", "librechat.requests.completed", "librechat.users.active"} <= names
    assert {p["unit"] for p in points if p["name"] == "librechat.cost"} == {"USD"}
    last: dict[Any, dict[str, Any]] = {}  # duration: the last point of each series holds its totals
    for point in points:
        if point["name"] == "librechat.request.duration":
            last[tuple(sorted(point["attributes"].items()))] = point
    assert sum(p["count"] for p in last.values()) == len(expected["durations"]) > 0
    assert sum(p["sum"] for p in last.values()) == pytest.approx(sum(expected["durations"]), abs=1e-3)
    assert {p["unit"] for p in last.values()} == {"s"}
    for point in points:
        assert not set(point["attributes"]) & set(IDS), point
        for value in point["attributes"].values():  # nor an id's value under another name
            assert not (isinstance(value, str) and (OBJECT_ID.search(value) or UUID.search(value))), point


def test_distinct_users_are_exact_up_to_the_set_size_then_within_the_documented_error() -> None:
    from logtail.export.users import ActiveUsers

    day = 1_700_000_000_000_000_000
    users = ActiveUsers()
    for n in range(EXACT):
        users.add(f"user-{n}", day + n)
        users.add(f"user-{n}", day + n)  # seen twice, counted once
    (window,) = [w for w in users.take() if w[0] == "day"]
    assert users.point(window)[1] == EXACT
    for n in range(EXACT, 50_000):
        users.add(f"user-{n}", day + n)
    assert abs(users.point(window)[1] - 50_000) / 50_000 < 3 * 0.0163  # three standard errors
    sketch = HyperLogLog()
    for n in range(200):
        sketch.add(user_hash(str(n)))
    assert abs(sketch.estimate() - 200) <= 7  # linear counting: ±2.2 (one standard error) at this size


def test_a_second_full_replay_leaves_the_collector_numbers_unchanged(
    samples: Path, collector: DevCollector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replayed again from scratch (a new replay state), the same files give the same cumulative series (same
    start times, same totals) and the same distinct-user gauges: nothing is counted twice at the backend."""
    expected = truth(samples, "v0.8.1")
    collector_numbers(collector, tmp_path / "first", "v0.8.1", monkeypatch)
    points, received = collector_numbers(collector, tmp_path / "second", "v0.8.1", monkeypatch)
    assert len({p["time_unix_nano"] for p in points if p["name"] == "librechat.requests"}) > 1
    for key in ("users", "requests", "outcomes", "by_endpoint"):
        assert received[key] == expected[key], key


def _event(name: str, seconds: float, **attributes: Any) -> Event:
    return Event(name, int(seconds * 1e9), "debug", 5, "", dict(attributes), "debug", "logs/debug.log", 1, 0, 1)


def _points(request: Any, name: str) -> list[Any]:
    metrics = [m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name]
    return [p for m in metrics for p in getattr(m, m.WhichOneof("data")).data_points]


def test_no_identifier_is_an_attribute_of_the_users_gauge_even_when_allowed() -> None:
    allowed = ["user.id", "gen_ai.conversation.id", "librechat.request.id"]
    config = MetricsConfig.model_validate({"allowed_attributes": allowed})
    aggregator = Aggregator(config, {"service.name": "librechat"}, "0")
    ids = {"user.id": "u1", "gen_ai.conversation.id": "c1", "librechat.request.id": "r1"}
    aggregator.add([_event("librechat.token.usage", 3600.5, **{"librechat.token.context": "message"}, **ids)])
    request = aggregator.request(aggregator.take(), None, 0)
    day, hour = sorted(_points(request, "librechat.users.active"), key=lambda p: p.start_time_unix_nano)
    for point in (day, hour):
        assert [kv.key for kv in point.attributes] == ["librechat.users.window"] and point.as_int == 1
    assert (day.start_time_unix_nano, hour.start_time_unix_nano) == (0, 3600 * 10**9)
    (opted_in,) = _points(request, "librechat.requests")  # the other metrics follow metrics.allowed_attributes
    assert {kv.key for kv in opted_in.attributes} == set(ids)


def test_hourly_totals_survive_a_failed_export() -> None:
    aggregator = Aggregator(MetricsConfig(), {"service.name": "librechat"}, "0")
    usage = {"librechat.token.context": "message", "librechat.endpoint": "openAI"}
    aggregator.add([_event("librechat.token.usage", t, **usage) for t in (10, 20, 3610, 7210, 7220)])
    taken = aggregator.take()
    first = [(p.time_unix_nano, p.as_int) for p in _points(aggregator.request(taken, None, 0), "librechat.requests")]
    assert first == [(20 * 10**9, 2), (3610 * 10**9, 3), (7220 * 10**9, 5)]  # an hour's total, oldest first
    aggregator.give_back(taken)  # the export failed
    again = aggregator.request(aggregator.take(), None, 0)
    assert [(p.time_unix_nano, p.as_int) for p in _points(again, "librechat.requests")] == first
    assert aggregator.request(aggregator.take(), None, 0).resource_metrics == []


def test_every_label_set_counts_apart_however_many_and_whatever_their_values() -> None:
    # More label sets than the aggregator remembers keys for, and values (a list) it cannot remember them by.
    config = MetricsConfig.model_validate({"allowed_attributes": ["user.id"], "max_series": 10_000})
    aggregator = Aggregator(config, {"service.name": "librechat"}, "0")
    usage = {"librechat.token.context": "message", "librechat.endpoint": "openAI"}
    users: list[Any] = [f"u{n}" for n in range(KEYS_KEPT + 100)] + [["a", "b"]] * 2
    for _ in range(2):
        aggregator.add([_event("librechat.token.usage", 10, **usage, **{"user.id": user}) for user in users])
    points = _points(aggregator.request(aggregator.take(), None, 0), "librechat.requests")
    counts = {next(kv.value.string_value for kv in p.attributes if kv.key == "user.id"): p.as_int for p in points}
    assert counts == {**{f"u{n}": 2 for n in range(KEYS_KEPT + 100)}, "['a', 'b']": 4}
