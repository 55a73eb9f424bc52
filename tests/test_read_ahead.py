"""Large files are parsed ahead in a worker process: the same events, the same errors, no leftover process."""

from __future__ import annotations

import gzip
import multiprocessing
from pathlib import Path

import pytest

from fixtures.generate import generate
from logtail.source import read
from logtail.source.files import discover
from logtail.source.read import AHEAD_MIN_BYTES, GZIP_RATIO, read_events
from parsers.event import Event
from parsers.records import DEFAULT_MAX_RECORD


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("large")
    generate(out, families=["debug"], size=3 * AHEAD_MIN_BYTES, max_size=1 << 30)
    path = max(out.glob("debug-*.log"), key=lambda p: p.stat().st_size)
    assert path.stat().st_size >= AHEAD_MIN_BYTES
    return path


def inline(path: Path, start: int = 0) -> list[Event]:
    return list(read._events(discover([path])[0], DEFAULT_MAX_RECORD, start))


def test_same_events_as_parsing_in_place(large: Path) -> None:
    ahead = list(read_events(discover([large])[0]))
    assert ahead == inline(large)
    resumed = ahead[len(ahead) // 2].start
    assert list(read_events(discover([large])[0], start=resumed)) == inline(large, resumed)


def test_a_damaged_archive_gives_the_records_before_the_damage_then_the_error(large: Path, tmp_path: Path) -> None:
    packed = gzip.compress(large.read_bytes())
    damaged = tmp_path / "debug-2025-11-24.log.gz"
    damaged.write_bytes(packed[: len(packed) // 2])
    assert damaged.stat().st_size * GZIP_RATIO >= AHEAD_MIN_BYTES
    got: list[Event] = []
    with pytest.raises(EOFError):
        got.extend(read_events(discover([damaged])[0]))
    assert 0 < len(got) < len(inline(large))
    whole = inline(large)[: len(got)]
    assert [(e.body, e.line, e.end) for e in got] == [(e.body, e.line, e.end) for e in whole]


def test_stopping_early_leaves_no_worker(large: Path) -> None:
    events = read_events(discover([large])[0])
    first = next(events)
    assert first.line == 1
    events.close()  # type: ignore[attr-defined]
    assert multiprocessing.active_children() == []
