"""The baseline: a plain shipper on the OpenTelemetry SDK, as one would write it in an afternoon.

LoggerProvider + BatchLogRecordProcessor + OTLPLogExporter (HTTP/protobuf, SDK defaults), one LogRecord per
Winston record: JSON lines become body=message plus flat attributes, debug records body=text. It calls
`force_flush` every 2 048 records so the processor's queue (2 048) never overflows and drops (backends-otlp.md
§5.4). `--follow DIR` polls a live logs directory instead; it reads new files from their beginning and knows
nothing of gzip hand-off, like most simple tailers.

    python -m bench.baseline_sdk --endpoint http://127.0.0.1:4318 PATH...
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from pathlib import Path

import orjson
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import Logger, LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from logtail.source.files import discover, open_decompressed
from parsers.event import severity_number
from parsers.records import Record, splitter_for
from parsers.winston import iso_to_ns

FLUSH_EVERY = 2048
POLL_SECONDS = 0.25


class Baseline:
    def __init__(self, endpoint: str) -> None:
        self.provider = LoggerProvider(resource=Resource.create({"service.name": "librechat"}))
        self.provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(f"{endpoint}/v1/logs")))
        self.logger: Logger = self.provider.get_logger("baseline")  # type: ignore[assignment]
        self.count = 0

    def emit(self, family: str, records: Iterable[Record]) -> None:
        for record in records:
            text = record.data.decode("utf-8", "replace")
            if family == "debug":
                stamp, _, rest = text.partition(" ")
                level, _, body = rest.partition(": ")
                attributes: dict[str, str | int | float | bool] = {}
            else:
                fields = orjson.loads(text)
                level, body, stamp = fields.pop("level", "info"), fields.pop("message", ""), fields.pop("timestamp", "")
                attributes = {k: v if isinstance(v, str | int | float | bool) else str(v) for k, v in fields.items()}
            self.logger.emit(
                timestamp=iso_to_ns(stamp) or time.time_ns(),
                severity_number=SeverityNumber(severity_number(level)),
                severity_text=level,
                body=body,
                attributes=attributes,
            )
            self.count += 1
            if self.count % FLUSH_EVERY == 0:
                self.provider.force_flush()

    def replay(self, paths: list[str]) -> None:
        for log_file in discover(paths):
            splitter = splitter_for(log_file.family)
            with open_decompressed(log_file.path) as stream:
                while chunk := stream.read1(1 << 20):
                    self.emit(log_file.family, splitter.feed(chunk))
            self.emit(log_file.family, splitter.flush())

    def follow(self, directory: str) -> None:
        """Poll for new bytes in every plain log file until killed; a file gzipped away is simply forgotten."""
        offsets: dict[Path, int] = {}
        while True:
            for log_file in discover([directory]):
                if log_file.gz:
                    continue
                try:
                    with open(log_file.path, "rb") as stream:
                        stream.seek(offsets.get(log_file.path, 0))
                        data = stream.read()
                except FileNotFoundError:  # gzipped away since the listing
                    continue
                complete = data[: data.rfind(b"\n") + 1]
                if complete:
                    offsets[log_file.path] = offsets.get(log_file.path, 0) + len(complete)
                    splitter = splitter_for(log_file.family)
                    self.emit(log_file.family, [*splitter.feed(complete), *splitter.flush()])
            self.provider.force_flush()
            time.sleep(POLL_SECONDS)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_sdk", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="OTLP/HTTP base URL, e.g. http://127.0.0.1:4318")
    parser.add_argument("--follow", metavar="DIR", help="follow a live logs directory instead of replaying PATHs")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    baseline = Baseline(args.endpoint)
    try:
        if args.follow:
            baseline.follow(args.follow)
        baseline.replay(args.paths)
    finally:
        baseline.provider.shutdown()
    print(f"shipped {baseline.count} records", flush=True)


if __name__ == "__main__":
    main()
