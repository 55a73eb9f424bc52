"""`python -m bench.stages`: µs per record of each stage of the hot path, on the error,
debug and tail mixes.

Each stage runs alone over what the stage before it produced, in one process, so the figures add up to what
the cores spend per record: split (bytes → records), parse (record → event), the scrub prefilter (one pass
over the raw bytes), redaction and the e-mail policy (only on the records the prefilter lets through, counted
per record of the mix), correlate, metrics (aggregation), encode (each LogRecord, in the parse workers),
frame (the request around the encoded records), compress (gzip, as the HTTP transport sends) and send (one
HTTP POST per batch to the embedded collector, counting only). The parse workers run split to encode in
parallel; the main process does the rest. The records are the sample corpora's logger calls with fresh ids
(`fixtures.generate`), in memory.
"""

from __future__ import annotations

import argparse
import gzip
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, TypeVar

import httpx

import parsers.winston
from fixtures.generate import Corpus
from logtail.config import MetricsConfig
from logtail.export.encode import LogEncoder
from logtail.export.metrics import Aggregator
from logtail.export.transport import GZIP_LEVEL
from logtail.pipeline import TWIN, Scrub
from logtail.pipeline.correlate import Correlator
from logtail.pipeline.settings import PrivacySettings
from parsers import FileContext, parse_record
from parsers.event import Event
from parsers.records import DEFAULT_MAX_RECORD, Record, splitter_for

MIXES: Final = {"error": ("error",), "debug": ("debug",), "tail": ("error", "debug")}
BATCH: Final = 1024
T = TypeVar("T")


@dataclass(slots=True)
class Stage:
    name: str
    seconds: float
    records: int

    @property
    def us(self) -> float:
        return self.seconds / self.records * 1e6 if self.records else 0.0


def timed(name: str, n: int, work: Callable[[], T]) -> tuple[Stage, T]:
    began = time.perf_counter()
    out = work()
    return Stage(name, time.perf_counter() - began, n), out


def family_bytes(mix: str, records: int) -> dict[str, bytes]:
    """`records` records of the mix, as the bytes of one file per family."""
    files: dict[str, list[bytes]] = {}
    for count, (template, _time, data) in enumerate(Corpus.load("v0.8", MIXES[mix]).records()):
        if count >= records:
            break
        files.setdefault(template.family, []).append(data)
    return {family: b"".join(parts) for family, parts in files.items()}


def split(files: dict[str, bytes]) -> list[tuple[str, list[Record]]]:
    out = []
    for family, data in files.items():
        splitter = splitter_for(family, DEFAULT_MAX_RECORD)
        records = [r for start in range(0, len(data), 1 << 20) for r in splitter.feed(data[start : start + (1 << 20)])]
        out.append((family, records + splitter.flush()))
    return out


def parse(split_files: list[tuple[str, list[Record]]]) -> list[Event]:
    events = []
    for family, records in split_files:
        ctx = FileContext(family, f"/logs/{family}-2025-11-24.log", f"{family}-2025-11-24.log", family, 0)
        events += [parse_record(record, ctx) for record in records]
    return events


def each(processor: Callable[[Event], Event], events: list[Event]) -> None:
    for event in events:
        processor(event)


def batches(events: list[Event]) -> Iterable[list[Event]]:
    return (events[i : i + BATCH] for i in range(0, len(events), BATCH))


def stages(mix: str, count: int, endpoint: str | None) -> list[Stage]:
    files = family_bytes(mix, count)
    split_stage, split_files = timed("split", 0, lambda: split(files))
    n = split_stage.records = sum(len(r) for _f, r in split_files)
    out = [split_stage]
    stage, events = timed("parse", n, lambda: parse(split_files))
    out.append(stage)
    scrub = Scrub(PrivacySettings())
    records = [r for _f, recs in split_files for r in recs]
    stage, needed = timed(
        "scrub prefilter", n, lambda: [e for e, r in zip(events, records, strict=True) if scrub.needed(r.data)]
    )
    out.append(stage)
    redact, emails = scrub.processors
    out.append(timed("redact (what the prefilter lets through)", n, lambda: each(redact, needed))[0])
    out.append(timed("e-mail policy", n, lambda: each(emails, needed))[0])
    out.append(timed("correlate", n, lambda: each(Correlator(), events))[0])
    shipped = [e for e in events if not e.attributes.get(TWIN)]
    aggregator = Aggregator(MetricsConfig(), {"service.name": "librechat"}, "bench")
    out.append(timed("metrics", n, lambda: aggregator.add(events))[0])
    encoder = LogEncoder({"service.name": "librechat"}, "bench")

    def encode_ahead() -> None:
        now = time.time_ns()
        for event in shipped:
            event.wire = (encoder.record(event, now), len(event.attributes))

    out.append(timed("encode (LogRecord)", len(shipped), encode_ahead)[0])
    stage, bodies = timed(
        "frame", len(shipped), lambda: [encoder.protobuf(b, time.time_ns()) for b in batches(shipped)]
    )
    out.append(stage)
    stage, packed = timed("compress", len(shipped), lambda: [gzip.compress(b, GZIP_LEVEL, mtime=0) for b in bodies])
    out.append(stage)
    if endpoint:
        with httpx.Client() as client:
            headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
            url = endpoint.rstrip("/") + "/v1/logs"
            out.append(
                timed("send", len(shipped), lambda: [client.post(url, content=b, headers=headers) for b in packed])[0]
            )
    return out


def build() -> str:
    """Which modules run: the extensions `make` compiles, or the sources (`LOGTAIL_PURE=1`, or a copy without them)."""
    return "interpreted" if parsers.winston.__file__.endswith(".py") else "compiled"


def table(results: dict[str, list[Stage]]) -> str:
    names = [s.name for s in next(iter(results.values()))]
    rows = ["| stage | " + " | ".join(f"{mix} µs" for mix in results) + " |", "|---" * (len(results) + 1) + "|"]
    for i, name in enumerate(names):
        rows.append(f"| {name} | " + " | ".join(f"{stages[i].us:.1f}" for stages in results.values()) + " |")
    rows.append("| **total** | " + " | ".join(f"**{sum(s.us for s in st):.1f}**" for st in results.values()) + " |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="records per mix")
    parser.add_argument("--no-send", action="store_true", help="leave out the send stage (no collector)")
    args = parser.parse_args()
    results: dict[str, list[Stage]] = {}
    if args.no_send:
        results = {mix: stages(mix, args.records, None) for mix in MIXES}
    else:
        from logtail.devcollector.collector import DevCollector

        with DevCollector(count_only=True) as collector:
            results = {mix: stages(mix, args.records, collector.http_endpoint) for mix in MIXES}
    print(f"{build()} build, {args.records:,} records per mix")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
