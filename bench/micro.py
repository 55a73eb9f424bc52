"""`python -m bench.micro`: µs per record of each pure stage over the bundled samples' records, in this process.

Splitting, parsing, the pipeline, metrics aggregation and OTLP encoding, without files, pipes or a network,
so that the compiled build (`make` builds it; `LOGTAIL_PURE=1` when installing skips it) can be compared
with the interpreted one. It prints which of the two it measured.
"""

from __future__ import annotations

import argparse
import gzip
import time
from collections.abc import Callable
from pathlib import Path

import parsers.winston
from logtail.config import MetricsConfig
from logtail.export.encode import LogEncoder
from logtail.export.metrics import Aggregator
from logtail.pipeline import Pipeline
from logtail.source.files import discover
from logtail.source.read import context_for
from parsers import FileContext, parse_record
from parsers.event import Event
from parsers.records import Record, splitter_for

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "librechat"
RESOURCE = {"service.name": "librechat"}


def sample_records() -> list[tuple[Record, FileContext]]:
    """Every record of both samples with the context its file gives it."""
    out: list[tuple[Record, FileContext]] = []
    for log_file in discover([SAMPLES / "v0.7", SAMPLES / "v0.8"]):
        data = gzip.decompress(log_file.path.read_bytes()) if log_file.gz else log_file.path.read_bytes()
        ctx = context_for(log_file, data)
        splitter = splitter_for(log_file.family)
        out += [(record, ctx) for record in splitter.feed(data) + splitter.flush()]
    return out


def best(run: Callable[[], object], rounds: int, prepare: Callable[[], object] = lambda: None) -> float:
    """The fastest of `rounds` runs, in seconds: the least disturbed by the other processes on the machine.
    `prepare` runs untimed before each (the pipeline changes its events in place, so it needs fresh ones)."""
    times = []
    for _ in range(rounds):
        prepare()
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    records = sample_records()
    data = [(record.data, ctx.family) for record, ctx in records]
    n = len(records)

    def split() -> None:
        for family in ("debug", "error"):
            splitter = splitter_for(family)
            for chunk, kind in data:
                if kind == family or (family == "error" and kind != "debug"):
                    splitter.feed(chunk)
            splitter.flush()

    def parse() -> list[Event]:
        return [parse_record(record, ctx) for record, ctx in records]

    processed = parse()
    Pipeline().process(processed)
    encoder = LogEncoder(RESOURCE, "0")
    fresh: list[list[Event]] = []
    stages: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "split": (split, lambda: None),
        "parse": (parse, lambda: None),
        "pipeline": (lambda: Pipeline().process(fresh[-1]), lambda: fresh.append(parse())),
        "metrics": (lambda: Aggregator(MetricsConfig(), RESOURCE, "0").add(processed), lambda: None),
        "encode": (lambda: encoder.protobuf(processed, 0), lambda: None),
    }
    compiled = not parsers.winston.__file__.endswith(".py")
    print(f"{n} records, {'compiled' if compiled else 'interpreted'} build; µs per record (best of {args.rounds})")
    for name, (run, prepare) in stages.items():
        print(f"{name:<9} {best(run, args.rounds, prepare) / n * 1e6:7.2f}")


if __name__ == "__main__":
    main()
