"""`parse_record`: one `Record` in, its typed `Event` out; what `parsers` exports (see its docstring).

Its own module rather than the package's `__init__`, which the compiled build cannot compile (setup.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

from parsers.catalogue import extractor_for
from parsers.console import raw_from_console
from parsers.containers import ContainerRecord
from parsers.envelope import CONTAINER_FAMILIES
from parsers.event import Attributes, Event, severity_number
from parsers.fields import put_leftovers
from parsers.records import Record
from parsers.salvage import salvage
from parsers.winston import Raw, decode_json, iso_to_ns, match_header, raw_from_debug, raw_from_json

UNPARSED: Final = "librechat.unparsed"
# Raw text kept in an unparsed event's body.
UNPARSED_BODY_CAP: Final = 64 * 1024


@dataclass(slots=True)
class FileContext:
    """What the parser knows about the file a record comes from.

    `identity` feeds `log.record.uid`; `file_date_ns` is midnight UTC of the file's date (0 if unknown);
    `last_time_ns` is updated by `parse_record` and carries time inference from record to record.
    `attributes` are put on every event of the file (a container's `k8s.*` names from its path).
    """

    family: str
    path: str
    name: str
    identity: str
    file_date_ns: int = 0
    last_time_ns: int | None = None
    attributes: Attributes = field(default_factory=dict)


def record_uid(identity: str, start: int) -> str:
    """Stable id of a record: the same bytes of the same file give the same id, wherever they are read."""
    return hashlib.blake2b(f"{identity}:{start}".encode(), digest_size=12).hexdigest()


def parse_record(record: Record, ctx: FileContext) -> Event:
    """The event for one record. Never raises: what cannot be decoded becomes `librechat.unparsed`."""
    try:
        return _parse(record, ctx)
    except Exception as exc:  # a parser bug must cost one record, not the stream
        return _unparsed(record, ctx, record.data.decode("utf-8", "replace"), f"{type(exc).__name__}: {exc}")


def _parse(record: Record, ctx: FileContext) -> Event:
    try:
        text = record.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _unparsed(record, ctx, record.data.decode("utf-8", "replace"), f"invalid UTF-8 at byte {exc.start}")
    if record.truncated:
        return _unparsed(record, ctx, text, f"record longer than {len(record.data)} bytes")
    error: str | None = None
    raw: Raw | None
    if ctx.family == "debug":
        header = match_header(text)
        raw = raw_from_debug(text, header) if header else None
        if raw is None:
            return _unparsed(record, ctx, text, "no debug record header")
    elif ctx.family in CONTAINER_FAMILIES and not text.startswith("{"):
        raw = raw_from_console(text)
        if raw is None:
            return _unparsed(record, ctx, text, "no LibreChat record header")
    else:
        stripped = text.strip()
        default_level = "error" if ctx.family == "error" else "info"
        obj = decode_json(stripped)
        if obj is not None:
            raw = raw_from_json(obj, default_level)
        else:
            error = "not a JSON object"
            raw = salvage(stripped, default_level)
            if raw is None:
                return _unparsed(record, ctx, text, error)
    attrs = _base_attributes(record, ctx)
    event_name = extractor_for(raw, ctx.family)(raw, attrs)
    put_leftovers(attrs, raw.fields)
    if error is not None:
        attrs["logtail.parse_error"] = error
        attrs["logtail.salvaged"] = True
    if ctx.family == "debug" and raw.level == "error":
        attrs["logtail.twin"] = True
    if raw.time_ns is None and isinstance(record, ContainerRecord) and record.observed_ns:
        raw.time_ns = record.observed_ns  # the colourised console's time has no milliseconds nor zone
    return _event(event_name, raw.time_ns, raw.level, raw.message, attrs, record, ctx)


def _event(
    name: str, time_ns: int | None, level: str, body: str, attrs: Attributes, record: Record, ctx: FileContext
) -> Event:
    return Event(
        event_name=name,
        time_unix_nano=_time(time_ns, ctx, attrs),
        severity_text=level,
        severity_number=severity_number(level),
        body=body,
        attributes=attrs,
        family=ctx.family,
        file=ctx.path,
        line=record.line,
        start=record.start,
        end=record.end,
        observed_unix_nano=record.observed_ns if isinstance(record, ContainerRecord) else 0,
    )


def _base_attributes(record: Record, ctx: FileContext) -> Attributes:
    attrs: Attributes = {
        "log.file.name": ctx.name,
        "log.file.path": ctx.path,
        "logtail.file.family": ctx.family,
        "log.record.uid": record_uid(ctx.identity, record.start),
    }
    if ctx.attributes:
        attrs.update(ctx.attributes)
    if isinstance(record, ContainerRecord) and record.stream:
        attrs["log.iostream"] = record.stream
    return attrs


def _time(time_ns: int | None, ctx: FileContext, attrs: Attributes) -> int:
    """The record's own time, else the previous record's in this file, else the file's date."""
    if time_ns is not None:
        ctx.last_time_ns = time_ns
        return time_ns
    attrs["logtail.time_inferred"] = True
    return ctx.last_time_ns if ctx.last_time_ns is not None else ctx.file_date_ns


def _unparsed(record: Record, ctx: FileContext, text: str, error: str) -> Event:
    attrs = _base_attributes(record, ctx)
    attrs["logtail.parse_error"] = error
    truncated = record.truncated or len(text) > UNPARSED_BODY_CAP
    attrs["logtail.truncated"] = truncated
    time_ns: int | None = None
    level = ""
    if ctx.family == "debug":
        header = match_header(text)
        if header:
            level = header.group(2)
            time_ns = iso_to_ns(header.group(1))
    elif isinstance(record, ContainerRecord) and record.observed_ns:
        time_ns = record.observed_ns  # another program's output, or a line the runtime wrote whole
    return _event(UNPARSED, time_ns, level, text[:UNPARSED_BODY_CAP], attrs, record, ctx)
