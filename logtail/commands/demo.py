"""`make demo`: replay the bundled LibreChat sample logs into an embedded OTLP collector and show what arrived.

Starts rotel (logtail.devcollector.collector) on free loopback ports, ships every file of the sample corpora through
the same code as `logtail replay`, over OTLP/HTTP, then reads back what the collector received: records by
event name, output tokens by model (from the log records and from the `librechat.tokens` metric) and records
sent against received. Exits 1 when anything is missing, duplicated or disagrees.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

from logtail.commands.replay import Replay, ReplayResult, Window, select_files
from logtail.commands.replay_state import ReplayState
from logtail.config import Config
from logtail.devcollector.collector import DevCollector

SAMPLES: Final = Path(__file__).resolve().parents[2] / "fixtures" / "librechat"
CORPORA: Final = ("v0.7", "v0.8", "v0.8.1")
NO_MODEL: Final = "(no model in the logs)"
METRIC_WAIT: Final = 10.0  # seconds for the final metric export to show up in the collector's output
DEADLINE: Final = 30.0


def output_tokens_in_logs(logs: list[dict[str, Any]]) -> Counter[str]:
    tokens: Counter[str] = Counter()
    for record in logs:
        attributes = record["attributes"]
        if record["event_name"] == "librechat.token.usage" and "gen_ai.usage.output_tokens" in attributes:
            tokens[attributes.get("gen_ai.request.model", NO_MODEL)] += attributes["gen_ai.usage.output_tokens"]
    return tokens


def output_tokens_in_metric(points: list[dict[str, Any]]) -> Counter[str]:
    """Totals of `librechat.tokens{gen_ai.token.type=output}` by model: the last point of each series
    (cumulative), series of several providers of one model added up."""
    last: dict[str, dict[str, Any]] = {}
    for point in points:
        attributes = point["attributes"]
        if point["name"] == "librechat.tokens" and attributes.get("gen_ai.token.type") == "output":
            last[repr(sorted(attributes.items()))] = point
    tokens: Counter[str] = Counter()
    for point in last.values():
        tokens[point["attributes"].get("gen_ai.request.model", NO_MODEL)] += point["value"]
    return tokens


def last_points(points: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The latest point of each series of a cumulative metric: its total."""
    last: dict[str, dict[str, Any]] = {}
    for point in points:
        if point["name"] == name:
            last[repr(sorted(point["attributes"].items()))] = point
    return list(last.values())


def request_metrics(points: list[dict[str, Any]]) -> list[str]:
    """A short summary of active users, requests, cost and outcomes as the collector received them."""
    days: dict[str, Any] = {}
    for point in points:
        if point["name"] == "librechat.users.active" and point["attributes"].get("librechat.users.window") == "day":
            days[time.strftime("%Y-%m-%d", time.gmtime(point["start_time_unix_nano"] // 1_000_000_000))] = point
    models: Counter[str] = Counter()
    for point in last_points(points, "librechat.requests"):
        models[point["attributes"].get("gen_ai.request.model", NO_MODEL)] += point["value"]
    cost = sum(point["value"] for point in last_points(points, "librechat.cost"))
    outcomes: Counter[str] = Counter()
    for point in last_points(points, "librechat.requests.completed"):
        outcomes[point["attributes"]["librechat.request.outcome"]] += point["value"]
    durations = last_points(points, "librechat.request.duration")
    count = sum(point["count"] for point in durations)
    mean = sum(point["sum"] for point in durations) / count if count else 0.0
    return [
        "Request metrics: active users per UTC day "
        + ", ".join(f"{day} {p['value']:,}" for day, p in sorted(days.items())),
        f"  {models.total():,} requests (" + ", ".join(f"{m} {n:,}" for m, n in models.most_common(2)) + ", …),"
        f" {cost:,.4f} USD, outcomes " + ", ".join(f"{o} {n:,}" for o, n in sorted(outcomes.items())) + ","
        f" {count:,} durations (mean {mean:.2f} s)",
    ]


def replay_samples(collector: DevCollector, workdir: Path) -> ReplayResult:
    files, bad_paths = select_files([SAMPLES / corpus for corpus in CORPORA])
    if bad_paths or not files:
        raise RuntimeError(f"sample logs not found under {SAMPLES}")
    config = Config.model_validate(
        {
            "source": {"logs_dir": str(SAMPLES), "state_dir": str(workdir)},
            "export": {"endpoint": collector.http_endpoint, "protocol": "http/protobuf"},
        }
    )
    with ReplayState(workdir / "replay.json", "demo", {"endpoint": collector.http_endpoint}) as state:
        return Replay(
            config,
            files,
            state,
            window=Window(),
            stop=threading.Event(),
            deadline=DEADLINE,
            dead_letters=workdir / "dead-letters.jsonl",
            note=lambda line: print(f"  problem: {line}", file=sys.stderr),
        ).run()


def report(result: ReplayResult, collector: DevCollector) -> list[str]:
    """Prints what the collector received; returns what is wrong (nothing when the demo worked)."""
    sent = result.summary.acknowledged
    logs = collector.wait_for_logs(sent)
    from_logs = output_tokens_in_logs(logs)
    deadline = time.monotonic() + METRIC_WAIT
    from_metric = output_tokens_in_metric(collector.metrics())
    while from_metric != from_logs and time.monotonic() < deadline:
        time.sleep(0.1)
        from_metric = output_tokens_in_metric(collector.metrics())

    names = Counter(record["event_name"] for record in logs)
    width = max((len(name) for name in names), default=0) + 2
    print("Records received, by event name:")
    for name, n in sorted(names.items()):
        print(f"  {name:<{width}}{n:>7,}")
    models = sorted(from_logs.keys() | from_metric.keys(), key=lambda m: (m == NO_MODEL, m))
    width = max((len(model) for model in models), default=0) + 2
    print("\nOutput tokens by model:")
    print(f"  {'':<{width}}{'log records':>12}{'librechat.tokens':>18}")
    for model in models:
        print(f"  {model:<{width}}{from_logs[model]:>12,}{from_metric[model]:>18,}")

    for line in request_metrics(collector.metrics()):
        print(line)

    uids = Counter(record["attributes"].get("log.record.uid") for record in logs)
    twins = result.summary.skipped
    print(f"\nRecords: {result.read:,} read from {result.files} files, {twins:,} debug-file twins of errors left out")
    print(f"         {sent:,} sent, {len(logs):,} received, {len(uids):,} distinct")
    problems = [*result.problems]
    if result.gave_up:
        problems.append(f"export gave up: {result.gave_up}")
    if result.summary.dead_lettered:
        problems.append(f"{result.summary.dead_lettered} records refused by the collector")
    if sent + twins != result.read:
        problems.append(f"{result.read - sent - twins} records read but neither sent nor left out")
    if len(logs) != sent or len(uids) != sent:
        problems.append(f"sent {sent} records, the collector received {len(logs)} ({len(uids)} distinct)")
    if from_metric != from_logs:
        problems.append("output tokens in librechat.tokens differ from those in the log records")
    return problems


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="logtail-demo-") as tmp:
        workdir = Path(tmp)
        try:
            collector = DevCollector(workdir / "collector").start()
        except RuntimeError as exc:
            print(f"logtail demo: cannot start the embedded collector: {exc}", file=sys.stderr)
            return 1
        try:
            print(f"logtail demo: shipping the LibreChat sample logs to a collector at {collector.http_endpoint}\n")
            problems = report(replay_samples(collector, workdir), collector)
        finally:
            collector.stop()
    for line in problems:
        print(f"MISSING: {line}", file=sys.stderr)
    print("FAILED" if problems else "OK: every record arrived exactly once.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
