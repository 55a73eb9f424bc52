"""Fuzzing the record splitters, the debug-block reader and every event parser (hypothesis, bounded for CI).

test_records.py already proves splitting lossless for any bytes and chunking; here: resuming at a record
boundary (what a checkpoint does), the position/pending accounting the lag metric reads, and parsers fed
structure-aware records (Winston JSON lines with random fields, debug headers with random blocks, mutated
real records) that must give well-formed events without ever reaching parse_record's catch-all.
"""

from __future__ import annotations

import calendar
import datetime as dt
import gzip
import re
from functools import cache
from typing import Any, Final

import orjson
from conftest import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_records import DATA, FAMILIES, split

from parsers import FileContext, parse_record, record_uid
from parsers.catalogue import TAGS, WORDS
from parsers.debugblock import parse_block
from parsers.event import SEVERITY, Event
from parsers.fields import CONSUMED, to_attr
from parsers.records import Record, splitter_for
from parsers.winston import iso_to_ns

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# events.md §2, plus the fallbacks.
EVENT_NAMES: Final = frozenset(
    {
        *(f"librechat.token.{n}" for n in ("usage", "transaction", "no_transaction")),
        *(f"librechat.balance.{n}" for n in ("check", "refill", "error")),
        *(f"librechat.auth.{n}" for n in ("login", "register", "password_reset", "2fa")),
        *(f"librechat.search.{n}" for n in ("sync", "error")),
        *(f"librechat.{n}" for n in ("violation", "ban", "request.aborted", "error", "server.lifecycle", "log")),
        "librechat.unparsed",
    }
)
# The reasons parse_record gives on purpose; anything else is an exception caught by its last-resort handler.
PARSE_ERRORS: Final = re.compile(
    r"invalid UTF-8 at byte \d+|record longer than \d+ bytes|no debug record header|not a JSON object"
)
INT64: Final = 1 << 63

LEVELS = st.sampled_from([*SEVERITY, "WARN", "", "fatal"])
STAMPS = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"),
    st.text(max_size=30),
)
# Message openings every extractor is chosen by, followed by anything.
PREFIXES = st.sampled_from(
    [f"[{tag}] " for tag in TAGS] + [prefix for rules in WORDS.values() for prefix, _ in rules] + ["", "[x] "]
)
MESSAGES = st.builds(lambda prefix, rest: prefix + rest, PREFIXES, st.text(max_size=80))
# Metadata keys no extractor reads: they must come out as `librechat.meta.<key>`, value intact.
FREE_KEYS = st.from_regex(r"zz[A-Za-z0-9_]{1,8}", fullmatch=True)
KNOWN_KEYS = st.sampled_from(sorted(CONSUMED))
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-INT64, INT64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# What debugTraverse writes as a leaf, and what it reads back as.
BLOCK_LEAVES = st.one_of(
    st.text(max_size=100).map(lambda s: (orjson.dumps(s).decode(), s)),
    st.integers(min_value=-(10**12), max_value=10**12).map(lambda n: (str(n), n)),
    st.sampled_from([("true", True), ("false", False), ("null", None)]),
    st.lists(st.text(max_size=10), max_size=4).map(lambda xs: (orjson.dumps(xs).decode(), xs)),
)


def context(family: str, last_time_ns: int | None = None) -> FileContext:
    return FileContext(family, f"/logs/{family}.log", f"{family}.log", "identity", 86_400 * 10**9, last_time_ns)


def parsed(family: str, data: bytes, start: int = 3, line: int = 2) -> tuple[Event, Record, FileContext]:
    record = Record(data, start, start + len(data), line)
    ctx = context(family)
    return parse_record(record, ctx), record, ctx


def assert_well_formed(event: Event, record: Record, ctx: FileContext) -> None:
    """What the exporter and every backend rely on, whatever the input was."""
    assert event.event_name in EVENT_NAMES
    assert (event.start, event.end, event.line, event.family) == (record.start, record.end, record.line, ctx.family)
    assert event.severity_number == SEVERITY.get(event.severity_text, 0)
    assert isinstance(event.body, str) and isinstance(event.time_unix_nano, int)
    attrs = event.attributes
    assert attrs["log.record.uid"] == record_uid(ctx.identity, record.start)
    assert attrs["logtail.file.family"] == ctx.family and attrs["log.file.path"] == ctx.path
    error = attrs.get("logtail.parse_error")
    assert error is None or PARSE_ERRORS.fullmatch(str(error)), f"parser bug: {error}"
    for key, value in attrs.items():
        assert isinstance(key, str) and key
        if isinstance(value, list):
            assert len({type(item) for item in value}) <= 1 and all(isinstance(v, str | int | float) for v in value)
        else:
            assert isinstance(value, str | int | float | bool), (key, value)
        if isinstance(value, int) and not isinstance(value, bool):
            assert -INT64 <= value < INT64, (key, value)
    orjson.dumps(event.to_json_dict())


@cache
def real_records() -> tuple[tuple[str, bytes], ...]:
    """Every record of both sample corpora, with its family."""
    found: list[tuple[str, bytes]] = []
    for path in sorted(SAMPLES.rglob("*.log*")):
        family = "debug" if "debug" in path.name else "meili" if "meili" in path.name else "error"
        family = "login" if "login" in path.name else family
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        found += [(family, record.data) for record in split(family, data, [])]
    return tuple(found)


@FUZZ
@given(family=st.sampled_from(FAMILIES), data=DATA, cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_position_and_pending_account_for_every_byte_fed(family: str, data: bytes, cuts: list[int]) -> None:
    offset = 1000
    splitter = splitter_for(family, offset=offset)
    fed, last_end = 0, offset
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {len(data)})
    previous = 0
    for cut in bounds:
        records = splitter.feed(data[previous:cut])
        fed += cut - previous
        previous = cut
        if records:
            assert records[0].start == last_end
            last_end = records[-1].end
        assert splitter.position == last_end
        assert splitter.position + splitter.pending == offset + fed
    flushed = splitter.flush()
    if flushed:
        last_end = flushed[-1].end
    assert splitter.position == last_end


@FUZZ
@given(family=st.sampled_from(FAMILIES), data=DATA, pick=st.integers(min_value=0))
def test_resuming_at_a_record_end_gives_the_same_remaining_records(family: str, data: bytes, pick: int) -> None:
    records = split(family, data, [])
    if not records:
        return
    cut = pick % len(records)
    end = records[cut].end
    splitter = splitter_for(family, offset=end, line=data.count(b"\n", 0, end) + 1)
    assert splitter.feed(data[end:]) + splitter.flush() == records[cut + 1 :]


@FUZZ
@given(block=st.dictionaries(st.from_regex(r"[A-Za-z_$][\w$.]{0,15}", fullmatch=True), BLOCK_LEAVES, max_size=8))
def test_debug_block_reads_back_what_debug_traverse_wrote(block: dict[str, tuple[str, Any]]) -> None:
    lines = [
        f"  // {len(text)} item(s)\n  {k}: {text}" if text.startswith("[") else f"  {k}: {text},"
        for k, (text, _) in block.items()
    ]
    assert parse_block("\n".join(lines)) == {key: value for key, (_, value) in block.items()}


@FUZZ
@given(text=st.text(max_size=300))
def test_debug_block_reader_takes_any_text(text: str) -> None:
    assert isinstance(parse_block(text), dict)


@FUZZ
@given(
    family=st.sampled_from(["error", "meili", "login"]),
    level=LEVELS,
    message=MESSAGES,
    stamp=st.none() | STAMPS,
    known=st.dictionaries(KNOWN_KEYS, JSON_VALUES, max_size=4),
    free=st.dictionaries(FREE_KEYS, JSON_VALUES, max_size=4),
)
def test_winston_json_lines_with_random_fields(
    family: str, level: str, message: str, stamp: str | None, known: dict[str, Any], free: dict[str, Any]
) -> None:
    obj: dict[str, Any] = {**known, **free, "level": level, "message": message}
    if stamp is not None:
        obj["timestamp"] = stamp
    event, record, ctx = parsed(family, orjson.dumps(obj) + b"\n")
    assert_well_formed(event, record, ctx)
    assert event.severity_text == level and event.body == message
    time_ns = iso_to_ns(stamp) if stamp else None
    assert event.time_unix_nano == (time_ns if time_ns is not None else ctx.file_date_ns)
    for key, value in free.items():
        assert event.attributes.get(f"librechat.meta.{key}") == (None if value == "" else to_attr(value))


@FUZZ
@given(
    level=st.sampled_from(list(SEVERITY)),
    message=MESSAGES.filter(lambda m: "\n" not in m),
    block=st.none() | st.dictionaries(FREE_KEYS, BLOCK_LEAVES, max_size=5),
    tail=st.sampled_from(["\n", "\r\n", ""]),
)
def test_debug_records_with_random_blocks(
    level: str, message: str, block: dict[str, tuple[str, Any]] | None, tail: str
) -> None:
    text = f"2025-11-24T23:25:48.797Z {level}: {message}"
    if block is not None:
        text += "\n{\n" + "".join(f"  {key}: {leaf},\n" for key, (leaf, _) in block.items()) + "}"
    event, record, ctx = parsed("debug", (text + tail).encode())
    assert_well_formed(event, record, ctx)
    assert event.time_unix_nano == iso_to_ns("2025-11-24T23:25:48.797Z")
    if block and level == "debug":
        for key, (_, value) in block.items():
            assert event.attributes.get(f"librechat.meta.{key}") == (None if value == "" else to_attr(value))


@FUZZ
@given(
    pick=st.integers(min_value=0),
    at=st.integers(min_value=0),
    cut=st.integers(min_value=0, max_value=40),
    insert=st.one_of(st.binary(max_size=12), st.sampled_from([b'"', b"\\", b"\n", b"{", b"}", b"\n    at ", b": "])),
)
def test_mutated_real_records(pick: int, at: int, cut: int, insert: bytes) -> None:
    family, data = real_records()[pick % len(real_records())]
    at %= len(data) + 1
    event, record, ctx = parsed(family, data[:at] + insert + data[at + cut :])
    assert_well_formed(event, record, ctx)


def test_every_real_record_parses_without_reaching_the_last_resort() -> None:
    for family, data in real_records():
        event, record, ctx = parsed(family, data)
        assert_well_formed(event, record, ctx)


@FUZZ
@given(st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1)), st.sampled_from("T "))
def test_timestamps_read_as_the_calendar_says(when: dt.datetime, sep: str) -> None:
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    stamp = when.strftime(f"%Y-%m-%d{sep}%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    expected = calendar.timegm(when.timetuple()) * 1_000_000_000 + when.microsecond * 1000
    assert iso_to_ns(stamp) == expected
    assert iso_to_ns(stamp[:19]) == expected - when.microsecond * 1000  # `YYYY-MM-DD HH:mm:ss`


@FUZZ
@given(st.text(alphabet="0123456789-:.TZ x٣", min_size=23, max_size=23))
def test_winstons_shape_reads_like_any_other_stamp(text: str) -> None:
    """The 24-character `….mmmZ` shortcut agrees with the general reading (a 4-digit fraction, no `Z`)."""
    shaped = "2025-11-24T23:25:48.797"
    for stamp in (text, shaped[:17] + text[:2] + shaped[19:], shaped[:20] + text[:3], text[:16] + shaped[16:]):
        assert iso_to_ns(stamp + "Z") == iso_to_ns(stamp + "0")
