"""`logtail parse PATH...`: every record as one JSON line on stdout (events.md §6).

Runs the same pipeline as shipping (correlation, redaction, e-mail policy), so what it prints is
what would leave the host. An unreadable path is reported on stderr and the others are still
parsed; the exit status is then 2.
"""

from __future__ import annotations

import enum
import os
import sys
from pathlib import Path
from typing import IO, Annotated, Final

import orjson
import typer

from logtail.pipeline import Pipeline, PrivacySettings
from logtail.source.files import BadPath, LogFile, discover
from logtail.source.parse_workers import ParseWorkers, jobs_for
from logtail.source.read import READ_ERRORS, reason
from parsers.records import DEFAULT_MAX_RECORD

EXIT_BAD_PATH: Final = 2


class EmailChoice(enum.StrEnum):
    keep = "keep"
    mask = "mask"
    hash = "hash"
    drop = "drop"


def write_events(files: list[LogFile], pipeline: Pipeline, out: IO[bytes], err: IO[str]) -> bool:
    """Parse, process and print `files` in order; False if one of them could not be read to the end."""
    ok = True
    dumps = orjson.dumps
    with ParseWorkers(jobs_for(files), scrub=pipeline.scrub) as workers:
        for log_file in files:
            try:
                for batch in workers.batches(log_file, max_record=DEFAULT_MAX_RECORD):
                    if batch:
                        pipeline.join(batch)
                        out.write(b"\n".join([dumps(event.to_json_dict()) for event in batch]) + b"\n")
            except READ_ERRORS as exc:  # unreadable, or a damaged .gz: report it, keep what was read
                if isinstance(exc, BrokenPipeError):
                    raise
                err.write(f"logtail parse: {log_file.path}: {reason(exc)}\n")
                ok = False
    return ok


def parse_command(
    paths: Annotated[list[Path], typer.Argument(help="log files, directories or .gz archives", show_default=False)],
    email_policy: Annotated[
        EmailChoice, typer.Option("--email-policy", help="what to do with e-mail addresses")
    ] = EmailChoice.mask,
) -> None:
    """Print every record as a JSON line: time, severity, event name, body, attributes, file, line."""
    errors: list[BadPath] = []
    files = discover(paths, errors=errors)
    for error in errors:
        sys.stderr.write(f"logtail parse: {error}\n")
    pipeline = Pipeline(PrivacySettings(email=email_policy.value), error_family=any(f.family == "error" for f in files))
    try:
        ok = write_events(files, pipeline, sys.stdout.buffer, sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    if errors or not ok:
        raise typer.Exit(EXIT_BAD_PATH)
