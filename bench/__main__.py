"""`python -m bench` (`make bench`): every scenario for logtail and the SDK baseline, printed as one table.

python -m bench            # µs per record per stage, then the sizes of the targets: 300 k error records,
                           # 100 MB debug, 1 GB replay; the targets met or missed at the end
python -m bench --quick    # the same scenarios scaled down, a few minutes
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Final

import orjson

from bench import stages
from bench.scenarios import Bench, Result, Sizes, percentile
from logtail.devcollector.collector import DevCollector

SCENARIOS = ("replay-error", "replay-debug", "tail", "idle", "replay-1gb")
MIB = 1 << 20


def run(bench: Bench, sizes: Sizes, only: set[str]) -> list[Result]:
    results: list[Result] = []
    if "replay-error" in only:
        data, written = bench.data("error", families=["error"], records=sizes.error_records)
        results += bench.replay("replay-error", data, written)
    if "replay-debug" in only:
        data, written = bench.data("debug", families=["debug"], size=sizes.debug_bytes)
        results += bench.replay("replay-debug", data, written)
    if "tail" in only:
        results += bench.tail(sizes.tail_seconds)
    if "idle" in only:
        results += bench.idle(sizes.idle_seconds)
    if "replay-1gb" in only:
        data, written = bench.data("mix", size=sizes.big_bytes, gzip=True)
        # logtail only: the SDK baseline would add ten minutes; its memory is flat (see the other replays).
        results += bench.replay("replay-1gb", data, written, shippers=("logtail",))
    return results


def table(results: list[Result]) -> str:
    head = ("scenario", "shipper", "written", "delivered", "s", "records/s", "MB/s", "peak PSS MiB", "CPU %")
    rows = [[*head, "p50/p99 ms", "vs baseline", "notes"], ["---"] * (len(head) + 3)]
    baseline = {r.scenario: r for r in results if r.shipper == "baseline"}
    for r in results:
        cpu = r.cpu_percent if r.cpu_percent is not None else (r.run.cpu / r.run.seconds * 100 if r.run.seconds else 0)
        delays = f"{percentile(r.delay_ms, 0.5)}/{percentile(r.delay_ms, 0.99)}" if r.delay_ms else ""
        base = baseline.get(r.scenario)
        ratio = ""
        if r.shipper == "logtail" and base and r.scenario.startswith("replay"):
            ratio = f"{r.records_per_s / base.records_per_s:.1f}" if base.records_per_s else "∞"
        if r.scenario in ("tail", "idle"):
            speed, mbs = f"{r.delivered / r.run.seconds:,.0f}", f"{r.mb_per_s:.2f}"
        else:
            speed, mbs = f"{r.records_per_s:,.0f}", f"{r.mb_per_s:.1f}"
        rows.append(
            [r.scenario, r.shipper, f"{r.written:,}", f"{r.delivered:,}", f"{r.run.seconds:.1f}", speed, mbs,
             f"{r.run.peak_rss / MIB:.0f}", f"{cpu:.1f}", delays, ratio, _note(r)]
        )  # fmt: skip
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _note(r: Result) -> str:
    if r.shipper == "logtail" and r.run.returncode not in (0, None):
        return f"exit {r.run.returncode}: see {r.scenario}-logtail.log"
    return ""


# Issue targets, checked at the end of every run: (scenario, what, limit, unit, higher is better).
TARGETS: Final = (
    ("replay-error", "records/s vs baseline", 5.0, "x", True),
    ("replay-debug", "records/s vs baseline", 5.0, "x", True),
    ("tail", "CPU of one core", 8.0, "%", False),
    ("tail", "p99 append→receiver", 250.0, "ms", False),
    ("replay-1gb", "peak PSS, all processes", 80.0, "MiB", False),
    ("idle", "CPU of one core", 0.5, "%", False),
)


def targets(results: list[Result]) -> str:
    """One line per target: the figure measured in this run, the limit, met or missed (and by how much)."""
    mine = {r.scenario: r for r in results if r.shipper == "logtail"}
    base = {r.scenario: r for r in results if r.shipper == "baseline"}
    lines = []
    for scenario, what, limit, unit, higher in TARGETS:
        r = mine.get(scenario)
        if r is None:
            continue
        if unit == "x":
            b = base.get(scenario)
            value = r.records_per_s / b.records_per_s if b and b.records_per_s else None
        elif unit == "%":
            value = r.cpu_percent
        elif unit == "ms":
            value = percentile(r.delay_ms, 0.99)
        else:
            value = r.run.peak_rss / MIB
        if value is None:
            continue
        met = value >= limit if higher else value <= limit
        lost = f", {r.written - r.delivered:,} not delivered" if r.delivered != r.written else ", all delivered"
        verdict = "met" if met else f"missed by {abs(value - limit) / limit:.0%}"
        lines.append(f"{scenario:13} {what:26} {value:8.1f} {unit:3} (target {'≥' if higher else '≤'} {limit:g}): "
                     f"{verdict}{lost}")  # fmt: skip
    return "\n".join(lines)


def rss_lines(results: list[Result], points: int = 10) -> str:
    lines = []
    for r in results:
        if r.scenario == "replay-1gb" and r.run.rss_series:
            step = max(len(r.run.rss_series) // points, 1)
            series = r.run.rss_series[::step] + r.run.rss_series[-1:]
            lines.append(f"PSS over time, {r.shipper}: " + ", ".join(f"{t:.0f}s {b / MIB:.0f}" for t, b in series))
            parts = " + ".join(f"{b / MIB:.0f}" for b in r.run.peak_by_process)
            lines.append(f"At the peak, by process (main first): {parts} MiB")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down sizes")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--work", type=Path, default=Path("/tmp/logtail-bench"), help="generated data and logs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    if only - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(only - set(SCENARIOS)))}")
    sizes = Sizes.quick() if args.quick else Sizes.full()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with DevCollector(workdir=args.work / "collector", count_only=True) as collector:
        stage_table = stages.table(
            {mix: stages.stages(mix, sizes.stage_records, collector.http_endpoint) for mix in stages.MIXES}
        )
        results = run(Bench(args.work, collector), sizes, only)
    print(f"\nlogtail benchmark, {platform.node()}, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, {time.monotonic() - started:.0f} s\n")  # fmt: skip
    print(f"µs per record and stage ({stages.build()} build):\n{stage_table}")
    print()
    print(table(results))
    print(rss_lines(results))
    print("\nTargets:\n" + targets(results))
    if args.json:
        args.json.write_bytes(orjson.dumps([_row(r) for r in results], option=orjson.OPT_INDENT_2))
    return 0


def _row(r: Result) -> dict[str, object]:
    return {
        "scenario": r.scenario,
        "shipper": r.shipper,
        "written": r.written,
        "delivered": r.delivered,
        "seconds": r.run.seconds,
        "cpu_seconds": r.run.cpu,
        "cpu_percent": r.cpu_percent,
        "peak_rss": r.run.peak_rss,
        "input_bytes": r.input_bytes,
        "p50_ms": percentile(r.delay_ms, 0.5),
        "p99_ms": percentile(r.delay_ms, 0.99),
        "rss_series": r.run.rss_series,
    }


if __name__ == "__main__":
    raise SystemExit(main())
