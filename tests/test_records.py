"""Record splitting and parsing hold for any bytes, however they are chunked (hypothesis)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import FileContext, parse_record
from parsers.records import DEBUG_HEADER, Record, splitter_for

FAMILIES = ("debug", "error", "meili", "login")

# Bytes that look like LibreChat records, mixed with arbitrary ones, so both paths get exercised.
_PIECES = st.sampled_from(
    [
        b"2025-11-24T23:25:48.797Z debug: [spendTokens] conversationId: c | Token usage:\n{\n  promptTokens: 5,\n}\n",
        b"2025-11-24T23:25:00.000Z info\n",
        b"2025-11-24T23:25:00.000Z error: boom {",
        b'{"level":"error","message":"[Login] [Login failed] [Username: a@b] [Request-IP: 1.2.3.4]"}\n',
        b'{"level":"info","message":"[syncWithMeili] Processed: 9003"}\n',
        b'{"code":"x","config":{"Authorization":"Bearer [REDACTED] => error","stack":"E: m\\n at x"}\n',
        b"  \n",
        b"\n",
        b"\r\n",
        b"\xff\xfe\x00",
        b"{",
    ]
)
DATA = st.lists(st.one_of(_PIECES, st.binary(max_size=40)), max_size=25).map(b"".join)


def split(family: str, data: bytes, cuts: list[int], max_bytes: int = 1 << 20) -> list[Record]:
    splitter = splitter_for(family, max_bytes)
    records: list[Record] = []
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        records += splitter.feed(data[last:cut])
        last = cut
    records += splitter.feed(data[last:])
    return records + splitter.flush()


@settings(max_examples=300, deadline=None)
@given(family=st.sampled_from(FAMILIES), data=DATA, cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_splitting_is_lossless_and_chunking_does_not_matter(family: str, data: bytes, cuts: list[int]) -> None:
    records = split(family, data, cuts)
    joined = b"".join(r.data for r in records)
    assert data.startswith(joined)
    # Only whitespace-only lines after the last JSON record are not records.
    assert data[len(joined) :].strip() == b"" if family != "debug" else joined == data
    assert records == split(family, data, [])
    position = 0
    for record in records:
        assert record.start == position and record.end == record.start + len(record.data)
        # `line` is where the record's own text starts (JSON files: after the blank lines riding along).
        own = 0 if family == "debug" else record.data.rstrip(b"\n").rfind(b"\n") + 1
        assert record.line == data.count(b"\n", 0, record.start + own) + 1
        position = record.end


@settings(max_examples=200, deadline=None)
@given(family=st.sampled_from(FAMILIES), data=DATA, cap=st.integers(min_value=1, max_value=64))
def test_records_over_the_cap_are_cut_and_flagged(family: str, data: bytes, cap: int) -> None:
    records = split(family, data, [], max_bytes=cap)
    for record in records:
        if record.end - record.start > len(record.data):
            assert record.truncated
        if record.truncated:
            # JSON files: blank lines riding along come on top of the capped line.
            beyond = record.data[: max(len(record.data) - cap, 0)]
            assert not beyond if family == "debug" else not beyond.strip()


@settings(max_examples=300, deadline=None)
@given(data=DATA, cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_a_debug_record_is_a_header_line_and_the_lines_up_to_the_next_one(data: bytes, cuts: list[int]) -> None:
    records = split("debug", data, cuts)
    for n, record in enumerate(records):
        lines = [line for line in re.split(rb"(?<=\n)", record.data) if line]  # cut after each newline only
        assert n == 0 or DEBUG_HEADER.match(lines[0])  # only what precedes the first header has none
        assert not any(DEBUG_HEADER.match(line) for line in lines[1:])


@settings(max_examples=500, deadline=None)
@given(family=st.sampled_from(FAMILIES), data=st.one_of(DATA, st.binary(max_size=300)), truncated=st.booleans())
def test_parse_record_never_raises(family: str, data: bytes, truncated: bool) -> None:
    ctx = FileContext(family=family, path="p", name="n", identity="i", file_date_ns=5)
    event = parse_record(Record(data, 0, len(data), 1, truncated), ctx)
    assert event.event_name.startswith("librechat.")
    assert event.time_unix_nano >= 5 or event.time_unix_nano > 0
    assert event.attributes["log.record.uid"]
    if truncated:
        assert event.event_name == "librechat.unparsed" and event.attributes["logtail.truncated"] is True
