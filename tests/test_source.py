"""The tailer's durable parts on their own: file identity (fingerprint, offset marker) and the state file."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson
import pytest

from logtail.devcollector.collector import DevCollector
from logtail.service.selfmetrics import SelfMetrics
from logtail.source.checkpoint import Checkpoint, StateFile
from logtail.source.fingerprint import FINGERPRINT_SIZE, NO_MARKER, Fingerprint, Marker
from logtail.source.tracker import Tracker
from parsers.event import FAMILIES
from tests.rotator import Rotator, copytruncate
from tests.test_rotation import Service, exactly_once, names, record, wait_for, write_all


def checkpoint(path: str = "/logs/error-2025-11-24.log", offset: int = 10) -> Checkpoint:
    return Checkpoint(Fingerprint.of(b"x" * 40), "error-2025-11-24.log", path, offset, 2, Marker.of(b"abc"))


def test_a_fingerprint_grows_with_a_young_file_and_still_matches_its_prefix() -> None:
    young = Fingerprint.of(b'{"a":1}\n')
    grown = b'{"a":1}\n' + b"y" * 3000
    assert young.matches(grown)
    assert Fingerprint.of(grown).size == FINGERPRINT_SIZE
    assert not Fingerprint.of(grown).matches(b'{"a":1}\n')  # a shorter file is not the longer one
    assert not young.matches(b'{"b":1}\n' + b"y" * 3000)


def test_the_marker_catches_a_file_rewritten_past_the_old_offset() -> None:
    marker = Marker.of(b"...end of acknowledged record\n")
    assert marker.matches(b"prefix ...end of acknowledged record\n")
    assert not marker.matches(b"other content of the same length!!\n")
    assert NO_MARKER.matches(b"anything")


def test_the_state_file_round_trips_and_is_private(tmp_path: Path) -> None:
    os.umask(0o022)
    state = StateFile(tmp_path / "state", tmp_path / "logs")
    assert state.load() is None  # a first start
    assert state.save([checkpoint()])
    assert state.path.stat().st_mode & 0o777 == 0o600
    assert [c.to_json() for c in StateFile(tmp_path / "state", tmp_path / "logs").load() or []] == [
        checkpoint().to_json()
    ]
    assert sorted(p.name for p in state.path.parent.iterdir()) == [state.path.name]  # no temp file left


@pytest.mark.parametrize(
    "content",
    [
        b"{torn",
        b"[]",
        b'{"format":"other"}',
        b'{"format":"logtail-checkpoints","version":1,"logs_dir":"/x","files":[]}',
    ],
)
def test_L13_a_torn_or_foreign_state_file_is_set_aside_and_every_file_read_again(
    content: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = StateFile(tmp_path / "state", tmp_path / "logs")
    state.path.parent.mkdir()
    state.path.write_bytes(content)
    assert state.load() == []  # not a first start: nothing is skipped
    assert "unusable" in caplog.text
    assert not state.path.exists()
    assert [p.read_bytes() for p in state.path.parent.glob("*.bad-*")] == [content]


def test_one_state_file_per_logs_directory(tmp_path: Path) -> None:
    first, second = StateFile(tmp_path, tmp_path / "a" / "logs"), StateFile(tmp_path, tmp_path / "b" / "logs")
    assert first.path != second.path
    first.save([checkpoint()])
    assert orjson.loads(first.path.read_bytes())["logs_dir"] == str(tmp_path / "a" / "logs")
    assert second.load() is None


def test_L13_a_corrupt_state_file_at_start_means_duplicates_never_loss_nor_a_crash(
    collector: DevCollector, tmp_path: Path
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    rotator = Rotator(logs, "error", gzip=False)
    write_all(rotator, names("a", 5))
    with Service(collector, logs, state):
        wait_for(collector, names("a", 5))
    (saved,) = state.glob("*.json")
    saved.write_bytes(saved.read_bytes()[:30])  # torn
    write_all(rotator, names("b", 5))
    with Service(collector, logs, state, start_at="end"):
        got = wait_for(collector, names("a", 5) + names("b", 5))
    rotator.close()
    assert set(got) == set(names("a", 5) + names("b", 5))
    assert list(state.glob("*.bad-*"))


def test_L6_checkpoints_of_files_deleted_by_retention_are_forgotten(collector: DevCollector, tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    rotator = Rotator(logs, "error", gzip=True)
    write_all(rotator, names("old-day", 5))
    rotator.new_day("2025-11-25")
    write_all(rotator, names("new-day", 5))
    with Service(collector, logs, state):
        got = wait_for(collector, names("old-day", 5) + names("new-day", 5))
        (logs / "error-2025-11-24.log.gz").unlink()
        rotator.new_day("2025-11-26")
        write_all(rotator, names("third-day", 2))
        got = wait_for(collector, names("old-day", 5) + names("new-day", 5) + names("third-day", 2))
    rotator.close()
    exactly_once(got, names("old-day", 5) + names("new-day", 5) + names("third-day", 2))
    (saved,) = state.glob("*.json")
    kept = {row["name"] for row in orjson.loads(saved.read_bytes())["files"]}
    assert kept == {"error-2025-11-25.log", "error-2025-11-26.log"}


def test_a_gzip_archive_and_its_plain_file_have_the_same_identity(collector: DevCollector, tmp_path: Path) -> None:
    """Records read from `x.log` and, after a restart, from `x.log.gz` carry the same uids (no re-send)."""
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    plain = logs / "meiliSync-2025-11-24.log"
    plain.write_bytes(b"".join(record("meili", t) for t in names("m", 4)))
    with Service(collector, logs, state):
        wait_for(collector, names("m", 4))
    first = {r["attributes"]["log.record.uid"] for r in collector.logs()}
    with plain.open("ab") as out:
        out.write(record("meili", "m-4"))
    with plain.open("rb") as src, gzip.open(logs / "meiliSync-2025-11-24.log.gz", "wb") as dst:
        dst.write(src.read())
    plain.unlink()
    with Service(collector, logs, state):
        got = wait_for(collector, names("m", 5))
    exactly_once(got, names("m", 5))
    uids = [r["attributes"]["log.record.uid"] for r in collector.logs()]
    assert set(uids[:4]) == first and len(set(uids)) == 5


def test_a_login_log_inside_the_logs_directory_is_found_once_however_it_is_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "login-logs.log").write_bytes(record("login", "x"))
    tracker = Tracker(
        Path("logs"),
        tmp_path / "logs" / "login-logs.log",
        frozenset(FAMILIES),
        StateFile(tmp_path / "state", Path("logs")),
        start_at="beginning",
        max_record=1 << 20,
        flush_after=1.0,
        release_after=1.0,
        self_metrics=SelfMetrics(),
    )
    files, clean = tracker.candidates()
    assert clean and [f.path.name for f in files] == ["login-logs.log"]


def test_O3_a_copytruncate_written_past_the_position_before_a_scan_is_read_once_without_garbage(
    tmp_path: Path,
) -> None:
    """The race behind O3's rare failure: after copy + truncate, the writer appends past the reader's position
    before the next scan. Reading on from the old position would ship a torn record from the new content, and the
    copy, its marker then broken, would be read again whole."""
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "login-logs.log"
    live.write_bytes(b"".join(record("login", f"ct-{i}") for i in range(30)))
    tracker = Tracker(
        logs,
        None,
        frozenset(FAMILIES),
        StateFile(tmp_path / "state", logs),
        start_at="beginning",
        max_record=1 << 20,
        flush_after=1.0,
        release_after=1.0,
        self_metrics=SelfMetrics(),
    )

    def read(now: float) -> list[str]:
        items = tracker.read(1000, now)
        tracker.commit(items)
        return [str(item.event.body) for item in items if item.event is not None]

    tracker.scan(0.0)
    shipped = read(0.0)
    copytruncate(live, logs / "login-logs.log.1")
    with live.open("ab") as out:  # longer than before: the old position lies inside the new content
        out.write(b"".join(record("login", f"ct-{i}") for i in range(30, 60)))
    shipped += read(0.1)  # no scan in between
    tracker.scan(0.2)
    shipped += read(0.2) + read(0.3)
    assert shipped == names("ct", 60)
