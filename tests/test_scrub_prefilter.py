"""Records whose raw bytes hold no keyword skip the scrubbing: the result is that of scrubbing every record."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from logtail.pipeline import Scrub
from logtail.pipeline.settings import EmailPolicy, PrivacySettings
from logtail.source.files import discover
from logtail.source.read import record_chunks
from parsers import FileContext, parse_record
from parsers.event import Event
from parsers.records import Record
from tests.test_redact_prefilter import PIECES

STAMP = "2025-11-24T10:00:00.000Z"
# Pieces of text that are no secret but look like parts of one, JSON escapes and addresses.
MORE = st.sampled_from(
    ["\\u0073k-proj-abcd1234EFGH5678", "https:\\/\\/u:p@host", "\\u0040", "a@b.example", "chloé@bücher.example",
     "user", "email", "username", "Kelvin \u212aey=x", "promptTokens", "tokenCost"]
)  # fmt: skip
TEXT = st.lists(st.one_of(PIECES, MORE, st.text(max_size=8)), max_size=12).map("".join)
KEYS = st.one_of(st.sampled_from(["message", "user", "email", "password", "meta", "apiKey", "x"]), TEXT)
SCALARS = st.one_of(TEXT, st.integers(-(2**63), 2**63 - 1), st.booleans())
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.dictionaries(KEYS, inner, max_size=3) | st.lists(inner, max_size=3), max_leaves=8
)
POLICIES = st.sampled_from(["keep", "mask", "hash", "drop"])
# JSON may spell any character as an escape: a keyword, an '@' or a `://` can hide behind one in the raw bytes.
ESCAPES = st.sampled_from([(b"", b""), (b"s", b"\\u0073"), (b"k", b"\\u006B"), (b"@", b"\\u0040"), (b"/", b"\\/")])


def _json_line(message: str, meta: dict[str, object], level: str) -> bytes:
    return orjson.dumps({"level": level, "message": message, "timestamp": STAMP, **meta}) + b"\n"


def _debug_record(message: str, meta: dict[str, object], level: str) -> bytes:
    block = "".join(f"\n  {key}: {orjson.dumps(value).decode()}," for key, value in meta.items())
    return f"{STAMP} {level}: {message}{chr(10) + '{' + block + chr(10) + '}' if block else ''}\n".encode()


RECORDS = st.tuples(
    st.sampled_from(["error", "debug", "login"]),
    TEXT,
    st.dictionaries(KEYS, JSON_VALUES, max_size=4),
    st.sampled_from(["error", "warn", "info", "debug"]),
    ESCAPES,
)


def both_ways(policy: str, family: str, data: bytes, path: str) -> tuple[list[Event], list[Event]]:
    ctx = FileContext(family, path, Path(path).name, "id", 0)
    record = Record(data, 0, len(data), 1)
    event = parse_record(record, ctx)
    every = Scrub(PrivacySettings(email=policy))([copy.deepcopy(event)])  # type: ignore[arg-type]
    some = Scrub(PrivacySettings(email=policy)).records([event], [record], path)  # type: ignore[arg-type]
    return every, some


@settings(max_examples=1500, deadline=None)
@example(("error", "sk-proj-abcd1234EFGH5678", {}, "info", (b"s", b"\\u0073")), "keep", "/logs/x.log")
@example(("error", "https://admin:hunter2@db", {}, "info", (b"/", b"\\/")), "keep", "/logs/x.log")
@example(("error", "write to a@b.example", {}, "info", (b"@", b"\\u0040")), "mask", "/logs/x.log")
@given(RECORDS, POLICIES, st.sampled_from(["/var/log/librechat/x.log", "/srv/token=abc/x.log"]))
def test_the_prefilter_changes_nothing(
    record: tuple[str, str, dict[str, object], str, tuple[bytes, bytes]], policy: str, path: str
) -> None:
    family, message, meta, level, (char, escape) = record
    if family == "debug":
        data = _debug_record(message, meta, level)
    else:
        data = _json_line(message, meta, level)
        data = data.replace(char, escape) if char else data
    every, some = both_ways(policy, family, data, path)
    assert [e.to_json_dict() for e in some] == [e.to_json_dict() for e in every]


def test_a_user_name_without_at_sign_is_dropped_too() -> None:
    # LibreChat logs the login form's `username` parameter as `user.email`, address or not.
    data = _json_line(
        "Passport Local Strategy - Invalid credentials", {"parameters": [{"name": "username", "value": "bob"}]}, "error"
    )
    every, some = both_ways("drop", "login", data.replace(b"credentials", b"login"), "/logs/login-logs.log")
    assert "user.email" not in some[0].attributes and every[0].to_json_dict() == some[0].to_json_dict()


@settings(max_examples=800, deadline=None)
@given(st.binary(max_size=200), POLICIES)
def test_the_prefilter_changes_nothing_on_any_bytes(data: bytes, policy: str) -> None:
    for family in ("error", "debug"):
        every, some = both_ways(policy, family, data, "/logs/x.log")
        assert [e.to_json_dict() for e in some] == [e.to_json_dict() for e in every]


@pytest.mark.parametrize("policy", ["keep", "mask", "hash", "drop"])
def test_most_sample_records_skip_it_and_all_come_out_the_same(samples: Path, policy: EmailPolicy) -> None:
    scrub, skipped, total = Scrub(PrivacySettings(email=policy)), 0, 0
    for log_file in discover([samples]):
        for ctx, records in record_chunks(log_file, 1 << 20, 0):
            events = [parse_record(r, ctx) for r in records]
            every = Scrub(PrivacySettings(email=policy))(copy.deepcopy(events))
            assert [e.to_json_dict() for e in scrub.records(events, records, ctx.path)] == [
                e.to_json_dict() for e in every
            ]
            skipped += sum(not scrub.needed(r.data) for r in records)
            total += len(records)
    assert total and skipped > total // 10  # the prefilter has something to do on real logs
