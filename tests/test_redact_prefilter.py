"""The redactor's fast path (the pattern tried only near its keywords) replaces exactly what the full pattern does."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from logtail.pipeline.redact import Redactor, _replace
from logtail.source.files import discover
from logtail.source.read import read_events

# Pieces that start, end or almost make secrets, so random joins hit the patterns' edges.
PIECES = st.sampled_from(
    [
        "password", "Passwd", "SECRET", "token", "api-key", "x-api-key", "api_key", "apiKey", "Authorization",
        "proxy-authorization", "set-cookie", "Cookie", "credentials", "signature", "key=", "?key=", "Bearer ",
        "bearer", "sk-", "sk-ant-", "AIza", "eyJ", "://", "https://", "user:pw@", "[REDACTED]", ": ", "=", ":",
        '"', "'", "\\", "\\\"", " ", "\n", "-", "_", ".", ",", "{", "}", "[", "]", "&", "abcdefgh", "0123456789",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "\u00e9", "\u017f", "\u212a", "\u0130", "\u0131", "\u00df",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "sk-proj-abcd1234EFGH5678", "AIzaSyA1234567890abcdefghij", "mongodb://admin:hunter2@db",
    ]
)  # fmt: skip


def full(redactor: Redactor, value: str) -> str:
    return redactor._pattern.sub(_replace, value)


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_fast_path_equals_the_full_pattern(value: str) -> None:
    redactor = Redactor()
    assert redactor.text(value) == full(redactor, value)


def test_same_result_on_every_string_of_the_samples(samples: Path) -> None:
    redactor = Redactor()
    for log_file in discover([samples]):
        for event in read_events(log_file):
            for value in [event.body, *(v for v in event.attributes.values() if isinstance(v, str))]:
                assert redactor.text(value) == full(redactor, value), value
