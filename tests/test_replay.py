"""`logtail replay PATH...` over the wire to the real collector (events.md §6): every record once, the time
window, twins, resuming from the checkpoint, exit codes, progress and summary."""

from __future__ import annotations

import io
import os
import pty
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from logtail.commands.demo import CORPORA
from logtail.commands.progress import Progress
from logtail.commands.replay import NS, Window, parse_time, select_files
from logtail.commands.replay_state import ReplayState, StateError
from logtail.devcollector.collector import DevCollector, free_port
from logtail.pipeline import Pipeline
from logtail.source.files import LogFile
from logtail.source.read import read_events
from parsers.event import Event
from parsers.winston import iso_to_ns
from tests.stub_backend import Reply, StubBackend

LOGTAIL = str(Path(sys.executable).with_name("logtail"))


def replay(*args: str | Path, state: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOGTAIL, "replay", *map(str, args), "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def expected_events(*paths: Path) -> list[Event]:
    """What a replay of `paths` must deliver: every record but the twins of error-file records."""
    files, _ = select_files(list(paths))
    pipeline = Pipeline(error_family=any(f.family == "error" for f in files))
    events: list[Event] = []
    for log_file in files:
        events += pipeline.process(list(read_events(log_file)))
    return [e for e in events if not e.attributes.get("logtail.twin")]


def uids(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(r["attributes"]["log.record.uid"]) for r in records)


def event_uids(events: list[Event]) -> Counter[str]:
    return Counter(str(e.attributes["log.record.uid"]) for e in events)


def expected_calls(*corpora: Path) -> int:
    """Logger calls in the corpora's ground truth: one record each once twins are left out."""
    return sum(len((corpus / "expected.jsonl").read_text().splitlines()) for corpus in corpora)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_every_corpus_arrives_exactly_once_and_a_second_run_sends_nothing(
    protocol: str, collector: DevCollector, samples: Path, tmp_path: Path
) -> None:
    endpoint = collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint
    corpora = tuple(samples / corpus for corpus in CORPORA)
    state = tmp_path / "state" / "replay.json"
    done = replay(*corpora, "--endpoint", endpoint, "--protocol", protocol, state=state)
    assert done.returncode == 0, done.stderr
    expected = expected_events(*corpora)
    received = collector.wait_for_logs(len(expected))
    assert len(received) == len(expected) == expected_calls(*corpora)
    assert uids(received) == event_uids(expected)
    assert not any("logtail.twin" in r["attributes"] for r in received)
    twins = sum(1 for f in select_files(list(corpora))[0] for e in read_events(f)) - len(expected)
    assert f"{len(expected):,} acknowledged" in done.stdout
    assert f"{twins:,} debug-file twins of error-file records" in done.stdout
    by_name = Counter(e.event_name for e in expected)
    for name, n in by_name.items():
        assert any(line.split() == [name, f"{n:,}"] for line in done.stdout.splitlines()), name
    assert "replay: 100%" in done.stderr  # plain progress, stderr is not a terminal
    assert stat.S_IMODE(state.stat().st_mode) == 0o600

    again = replay(*corpora, "--endpoint", endpoint, "--protocol", protocol, state=state)
    assert again.returncode == 0, again.stderr
    assert "0 records read" in again.stdout and "replayed before" in again.stdout
    assert len(collector.wait_for_logs(len(expected) + 1, timeout=1)) == len(expected)


def test_debug_error_records_are_twins_only_where_that_instances_error_files_are_replayed(
    collector: DevCollector, samples: Path, tmp_path: Path
) -> None:
    # Another LibreChat instance's logs directory holding debug files only, replayed beside v0.8's full one.
    other = tmp_path / "other"
    other.mkdir()
    for path in (samples / "v0.7" / "api" / "logs").glob("debug-*"):
        (other / path.name).write_bytes(path.read_bytes())
    done = replay(samples / "v0.8", other, "--endpoint", collector.http_endpoint, state=tmp_path / "s.json")
    assert done.returncode == 0, done.stderr
    alone = [e for f in select_files([other])[0] for e in read_events(f)]
    assert sum(1 for e in alone if e.severity_text == "error") > 0
    expected = expected_events(samples / "v0.8") + alone
    received = collector.wait_for_logs(len(expected))
    assert uids(received) == event_uids(expected)
    v08 = [e for f in select_files([samples / "v0.8"])[0] for e in read_events(f)]
    assert f"{len(v08) - len(expected_events(samples / 'v0.8')):,} debug-file twins" in done.stdout


def test_since_and_until_select_exactly_the_records_in_the_window(
    collector: DevCollector, samples: Path, tmp_path: Path
) -> None:
    corpus = samples / "v0.8"
    since, until = "2025-11-24T23:40:00Z", "2025-11-25T00:30:00.250+00:00"
    low, high = iso_to_ns("2025-11-24T23:40:00.000Z"), iso_to_ns("2025-11-25T00:30:00.250Z")
    assert low is not None and high is not None
    every = expected_events(corpus)
    inside = [e for e in every if low <= e.time_unix_nano < high]
    assert 0 < len(inside) < len(every)
    assert any(e.time_unix_nano < low for e in every) and any(e.time_unix_nano >= high for e in every)
    window = ("--since", since, "--until", until)
    done = replay(corpus, "--endpoint", collector.http_endpoint, *window, state=tmp_path / "s")
    assert done.returncode == 0, done.stderr
    received = collector.wait_for_logs(len(inside))
    assert uids(received) == event_uids(inside)
    assert "outside --since/--until" in done.stdout


def test_times_dates_offsets_and_ages() -> None:
    now = 1_764_000_000 * NS
    assert parse_time("2025-11-24", now) == iso_to_ns("2025-11-24T00:00:00.000Z")
    assert parse_time("2025-11-24T13:00Z", now) == iso_to_ns("2025-11-24T13:00:00.000Z")
    assert parse_time("2025-11-24T15:00:00.5+02:00", now) == iso_to_ns("2025-11-24T13:00:00.500Z")
    assert parse_time("7d", now) == now - 7 * 86400 * NS
    assert parse_time("12h", now) == now - 12 * 3600 * NS
    assert parse_time("30m", now) == parse_time("30min", now) == now - 1800 * NS
    with pytest.raises(ValueError, match="yesterday"):
        parse_time("yesterday", now)


def test_a_file_is_skipped_by_its_date_only_when_none_of_its_records_can_be_in_the_window(samples: Path) -> None:
    (log_file,) = select_files([samples / "v0.8" / "logs" / "debug-2025-11-24.log.gz"])[0]
    day = parse_time("2025-11-24", 0)
    assert Window(since_ns=day + 86400 * NS + 12 * 3600 * NS).may_hold(log_file)  # a writer 14 h east of UTC
    assert Window(until_ns=day - 12 * 3600 * NS).may_hold(log_file)
    assert not Window(since_ns=day + 3 * 86400 * NS).may_hold(log_file)
    assert not Window(until_ns=day - 2 * 86400 * NS).may_hold(log_file)
    assert Window(since_ns=day * 10).may_hold(LogFile(Path("x.log"), "debug", None, 0, False))


def test_an_unreadable_path_is_reported_and_the_others_are_shipped(
    collector: DevCollector, samples: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    done = replay(samples / "v0.7", missing, "--endpoint", collector.http_endpoint, state=tmp_path / "s.json")
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if str(missing) in line] == [
        f"logtail replay: {missing}: no such file or directory"
    ]
    expected = expected_events(samples / "v0.7")
    assert uids(collector.wait_for_logs(len(expected))) == event_uids(expected)


def test_a_damaged_archive_is_reported_and_the_records_before_the_damage_are_shipped(
    collector: DevCollector, samples: Path, tmp_path: Path
) -> None:
    source = samples / "v0.8" / "logs" / "debug-2025-11-24.log.gz"
    damaged = tmp_path / "logs" / source.name
    damaged.parent.mkdir()
    damaged.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    (log_file,) = select_files([damaged])[0]
    readable = []
    with pytest.raises(EOFError):
        for event in read_events(log_file):
            readable.append(event)
    assert readable
    done = replay(damaged.parent, "--endpoint", collector.http_endpoint, state=tmp_path / "s.json")
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if str(damaged) in line] == [
        f"logtail replay: {damaged}: Compressed file ended before the end-of-stream marker was reached "
        "(records before the damage were shipped)"
    ]
    assert uids(collector.wait_for_logs(len(readable))) == event_uids(readable)


def test_a_dead_endpoint_fails_after_the_deadline_and_the_next_run_delivers_everything(
    collector: DevCollector, samples: Path, tmp_path: Path
) -> None:
    corpus = samples / "v0.7"
    state = tmp_path / "s.json"
    collector.kill()
    done = replay(corpus, "--endpoint", collector.http_endpoint, "--deadline", "1", state=state, timeout=30)
    assert done.returncode == 1
    assert "gave up" in done.stderr and "0 acknowledged" in done.stdout
    collector.start()
    again = replay(corpus, "--endpoint", collector.http_endpoint, state=state)
    assert again.returncode == 0, again.stderr
    expected = expected_events(corpus)
    assert uids(collector.wait_for_logs(len(expected))) == event_uids(expected)


def test_bad_configuration_and_bad_times_exit_2_with_one_line_each(samples: Path, tmp_path: Path) -> None:
    config = tmp_path / "logtail.toml"
    config.write_text('[export]\nprotocol = "smtp"\nbatch_max_records = 0\n')
    endpoint = f"http://127.0.0.1:{free_port()}"
    done = replay(samples / "v0.7", "--config", config, "--endpoint", endpoint, state=tmp_path / "s")
    assert done.returncode == 2
    assert [line.split(" ", 1)[0] for line in done.stderr.splitlines()] == [
        "export.protocol",
        "export.batch_max_records",
    ]
    done = replay(samples / "v0.7", "--since", "last tuesday", "--endpoint", endpoint, state=tmp_path / "s")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "last tuesday" in done.stderr
    done = replay(samples / "v0.7", "--endpoint", "collector:4318", state=tmp_path / "s")
    assert done.returncode == 2 and done.stderr.splitlines() == [
        "export.endpoint (--endpoint): must be an http:// or https:// URL with a host"
    ]


def test_a_damaged_or_busy_checkpoint_is_refused_not_overwritten(samples: Path, tmp_path: Path) -> None:
    state = tmp_path / "replay.json"
    state.write_text("{not json")
    done = replay(samples / "v0.7", "--endpoint", f"http://127.0.0.1:{free_port()}", state=state)
    assert done.returncode == 2 and "unusable checkpoint file" in done.stderr
    assert state.read_text() == "{not json"
    state.unlink()
    with ReplayState(state, "k", {}), pytest.raises(StateError, match="another replay"):
        ReplayState(state, "k", {}).__enter__()


def test_checkpoints_of_different_destinations_and_windows_are_kept_apart(tmp_path: Path) -> None:
    path = tmp_path / "replay.json"
    with ReplayState(path, "a", {"endpoint": "http://a"}) as first:
        first.progress("id1", "debug-2025-11-24.log").offset = 10
        first.save()
    with ReplayState(path, "b", {"endpoint": "http://b"}) as second:
        assert second.progress("id1", "debug-2025-11-24.log").offset == 0
        second.progress("id1", "debug-2025-11-24.log").offset = 20
        second.save()
    with ReplayState(path, "a", {"endpoint": "http://a"}) as first:
        assert first.files["id1"].offset == 10
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left behind


def test_plain_progress_lines_and_the_terminal_bar() -> None:
    plain = io.StringIO()
    progress = Progress(1000, plain, tty=False, every=0)
    progress.skip(100)
    progress.advance(400, 1234, "debug-2025-11-24.log.gz")
    progress.finish()
    first, last = plain.getvalue().splitlines()
    assert first.startswith("replay:  50%  1,234 records") and "records/s  ETA" in first
    assert first.endswith("debug-2025-11-24.log.gz") and "\r" not in first
    assert last.startswith("replay: 50% 1,234 records in")
    bar = io.StringIO()
    progress = Progress(1000, bar, tty=True, every=0)
    progress.advance(1000, 10, "x.log")
    assert bar.getvalue().startswith("\r\x1b[K[########################] 100%")


def test_refused_records_are_dead_lettered_reported_and_the_replay_still_succeeds(
    samples: Path, tmp_path: Path
) -> None:
    def refuse_bans(records: list[Any]) -> Reply:
        return Reply(400, message="no bans here") if any(r.event_name == "librechat.ban" for r in records) else Reply()

    corpus = samples / "v0.7"
    expected = expected_events(corpus)
    bans = sum(1 for e in expected if e.event_name == "librechat.ban")
    assert bans > 0
    with StubBackend(refuse_bans) as backend:
        done = replay(corpus, "--endpoint", backend.endpoint, state=tmp_path / "replay.json")
        stored = len(backend.stored)
    assert done.returncode == 0, done.stderr
    dead = tmp_path / "replay-dead-letters.jsonl"
    assert f"dead letters: {bans} refused records written to {dead}" in done.stdout
    assert len(dead.read_text().splitlines()) == bans
    assert stored == len(expected) - bans


def test_on_a_terminal_progress_is_a_bar_redrawn_in_place(
    collector: DevCollector, samples: Path, tmp_path: Path
) -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [
                LOGTAIL,
                "replay",
                str(samples / "v0.8"),
                "--endpoint",
                collector.http_endpoint,
                "--state",
                str(tmp_path / "s"),
            ],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=60,
            check=False,
        )
        os.close(follower)
        shown = b""
        while chunk := _read(leader):
            shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert shown.startswith(b"\r\x1b[K") and b"replay: " in shown and b"records/s)" in shown
    assert b"\n" not in shown.rstrip(b"\r\n")  # one line, rewritten


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO once the terminal's other side is closed
        return b""
