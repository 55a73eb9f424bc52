"""The tailer against real rotation (prior-art.md §3): every record written arrives at the collector once.

The follow loop runs in a thread with the real exporter and short poll intervals; files are written and
rotated by `tests/rotator.py` the way LibreChat's rotator does it. Records carry unique messages, so the
receiver's bodies say exactly what was lost or sent twice.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from logtail.config import Config, load_config
from logtail.devcollector.collector import DevCollector
from logtail.export import Shipper, build_sink
from logtail.export.sink import Sink
from logtail.pipeline import Pipeline
from logtail.service.selfmetrics import SelfMetrics
from logtail.source.tailer import Tailer, Timing
from parsers.event import Event
from tests.rotator import Rotator, copytruncate, gzip_and_unlink

FAST = Timing(poll_interval=0.02, scan_interval=0.2, flush_after=0.3, release_after=0.5, linger=0.02)


def record(family: str, text: str) -> bytes:
    """One LibreChat record whose body is `text`: a JSON line, or a multi-line debug record."""
    if family == "debug":
        return f'2025-11-24T10:00:00.000Z debug: {text}\n{{\n  tokens: 12,\n  model: "gpt-4o"\n}}\n'.encode()
    return f'{{"level":"error","message":"{text}","timestamp":"2025-11-24T10:00:00.000Z"}}\n'.encode()


def names(tag: str, n: int, start: int = 0) -> list[str]:
    return [f"{tag}-{i}" for i in range(start, start + n)]


class Service:
    """The follow loop of `logtail run` in a thread, shipping to `collector` through the real exporter."""

    def __init__(
        self,
        collector: DevCollector,
        logs: Path,
        state: Path,
        *,
        start_at: str = "beginning",
        login_log: Path | None = None,
        timing: Timing = FAST,
        wrap: Any = None,
    ) -> None:
        overrides = [
            f"source.logs_dir={logs}",
            f"source.state_dir={state}",
            f"source.start_at={start_at}",
            f"export.endpoint={collector.http_endpoint}",
            "export.compression=none",
        ]
        overrides += [f"source.login_log={login_log}"] if login_log else []
        self.config: Config = load_config(None, env={}, overrides=overrides)
        self.timing = timing
        self.wrap = wrap
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def __enter__(self) -> Service:
        self.metrics = SelfMetrics()
        self.halt = threading.Event()
        self.shipper: Shipper = build_sink(self.config, self_metrics=self.metrics, stop=self.halt)
        sink: Sink = self.wrap(self.shipper) if self.wrap else self.shipper
        self.tailer = Tailer(
            self.config.source,
            sink,
            self.metrics,
            pipeline=Pipeline(self.config.privacy),
            timing=self.timing,
            request_records=self.config.export.batch_max_records,
            on_ready=lambda _files: self.ready.set(),
        )
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), self.error
        return self

    def _run(self) -> None:
        try:
            self.tailer.run()
        except BaseException as exc:
            self.error = exc

    def __exit__(self, *_exc: object) -> None:
        self.tailer.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.halt.set()
        self.shipper.close()


def bodies(collector: DevCollector) -> Counter[str]:
    return Counter(str(r["body"]) for r in collector.logs())


def wait_for(collector: DevCollector, expected: Iterable[str], timeout: float = 60.0) -> Counter[str]:
    """What arrived once every expected body did (or the time is up: a bound generous for a loaded machine),
    after a short settle for extras."""
    want = set(expected)
    deadline = time.monotonic() + timeout
    while not want <= set(bodies(collector)) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.4)
    return bodies(collector)


def exactly_once(got: Counter[str], expected: Sequence[str]) -> None:
    missing = [text for text in expected if text not in got]
    doubled = {text: n for text, n in got.items() if n > 1}
    assert not missing, f"{len(missing)} records lost, e.g. {missing[:5]}"
    assert not doubled, f"records sent more than once: {list(doubled.items())[:5]}"
    assert set(got) == set(expected)


def uids_unique(collector: DevCollector) -> None:
    uids = Counter(str(r["attributes"]["log.record.uid"]) for r in collector.logs())
    assert all(n == 1 for n in uids.values())


def write_all(rotator: Rotator, texts: Iterable[str], pause: float = 0.0) -> None:
    for text in texts:
        rotator.write(record(rotator.family, text))
        if pause:
            time.sleep(pause)


# LibreChat's own rotations (L1-L5, L7) ---------------------------------------------------------------------
@pytest.mark.parametrize("family", ["error", "debug"])
def test_L2_L3_size_rotation_with_gzip_while_running_delivers_each_record_once(
    family: str, collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    rotator = Rotator(logs, family, max_size=2000, gzip=True)
    texts = names("size", 300)
    with Service(collector, logs, state):
        write_all(rotator, texts[:150], pause=0.001)
        write_all(rotator, texts[150:])  # faster than the poll: files are gzipped and unlinked before being read
        got = wait_for(collector, texts)
    rotator.close()
    exactly_once(got, texts)
    uids_unique(collector)
    assert any(p.name.endswith(".gz") for p in logs.iterdir())


def test_L1_date_rollover_reads_both_days_fully(collector: DevCollector, dirs: tuple[Path, Path]) -> None:
    logs, state = dirs
    rotator = Rotator(logs, "error", gzip=False)
    first, second = names("day1", 20), names("day2", 20)
    with Service(collector, logs, state):
        write_all(rotator, first)
        rotator.new_day("2025-11-25")
        write_all(rotator, second)
        got = wait_for(collector, first + second)
    rotator.close()
    exactly_once(got, first + second)
    assert {p.name for p in logs.iterdir()} == {"error-2025-11-24.log", "error-2025-11-25.log"}


def test_L4_rotated_and_gzipped_while_stopped_resumes_inside_the_archive(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    rotator = Rotator(logs, "debug", gzip=True)
    before, during, after = names("before", 30), names("while-stopped", 30), names("after", 10)
    with Service(collector, logs, state):
        write_all(rotator, before)
        wait_for(collector, before)
    write_all(rotator, during)
    rotator.rotate()
    write_all(rotator, after)
    assert (logs / "debug-2025-11-24.log.gz").exists() and not (logs / "debug-2025-11-24.log").exists()
    with Service(collector, logs, state):
        got = wait_for(collector, before + during + after)
    rotator.close()
    exactly_once(got, before + during + after)
    uids_unique(collector)


def test_L5_restart_on_the_same_day_sends_only_the_appended_records(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    rotator = Rotator(logs, "error", max_size=1500, gzip=True)
    first, second = names("first", 40), names("second", 40)
    with Service(collector, logs, state):
        write_all(rotator, first)
        wait_for(collector, first)
    rotator.close()  # LibreChat restarts and appends to its newest file, which is below maxSize
    newest = rotator.index
    rotator = Rotator(logs, "error", max_size=1500, gzip=True)
    rotator.index = newest
    write_all(rotator, second)
    with Service(collector, logs, state):
        got = wait_for(collector, first + second)
    rotator.close()
    exactly_once(got, first + second)


def test_L7_a_debug_record_written_in_pieces_arrives_once_and_whole(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    path = logs / "debug-2025-11-24.log"
    data = record("debug", "multi")
    with Service(collector, logs, state), path.open("ab") as out:
        for piece in (data[:20], data[20:45], data[45:]):
            out.write(piece)
            out.flush()
            time.sleep(0.1)  # shorter than flush_after: still one record
        got = wait_for(collector, ["multi"])
    rows = collector.logs()
    assert got == Counter({"multi": 1})
    assert "tokens" in str(rows[0]["attributes"]) or "12" in str(rows[0]["attributes"])


def test_a_file_created_empty_is_followed_from_its_first_write_not_from_the_next_periodic_scan(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    """winston-daily-rotate-file creates each new file before writing to it: its creation is seen while it is
    still empty and has no identity, and its first write must still be read at once."""
    logs, state = dirs
    rare_scans = Timing(poll_interval=0.02, scan_interval=60.0, flush_after=0.3, release_after=0.5, linger=0.02)
    with Service(collector, logs, state, timing=rare_scans) as service:
        path = logs / "error-2025-11-24.log"
        path.touch()
        deadline = time.monotonic() + 5
        while service.tailer.tracker.scans < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # the creation's scan has run and found the file empty
        assert service.tailer.tracker.scans >= 2
        path.write_bytes(record("error", "first-write"))
        got = wait_for(collector, ["first-write"], timeout=5)
    assert got == Counter({"first-write": 1})


def test_L7_a_record_being_written_at_shutdown_is_read_whole_after_the_restart(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    path = logs / "error-2025-11-24.log"
    data = record("error", "cut-at-shutdown")
    slow = Timing(poll_interval=0.02, scan_interval=0.2, flush_after=30.0, release_after=0.5, linger=0.02)
    with Service(collector, logs, state, timing=slow), path.open("ab") as out:
        out.write(record("error", "whole") + data[:25])
        out.flush()
        wait_for(collector, ["whole"])
    with path.open("ab") as out:
        out.write(data[25:])
    with Service(collector, logs, state):
        got = wait_for(collector, ["whole", "cut-at-shutdown"])
    exactly_once(got, ["whole", "cut-at-shutdown"])


def test_O13_a_last_line_without_newline_is_sent_after_the_flush_timeout(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    path = logs / "error-2025-11-24.log"
    with Service(collector, logs, state):
        path.write_bytes(record("error", "complete") + record("error", "no-newline").rstrip(b"\n"))
        got = wait_for(collector, ["complete", "no-newline"])
    exactly_once(got, ["complete", "no-newline"])


# Restarts, start positions, identity (O10, O11, O15, O16, V5) -------------------------------------------
def test_O11_O15_start_at_end_skips_old_records_but_reads_files_appearing_later(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    old = Rotator(logs, "error", gzip=False)
    write_all(old, names("old", 10))
    gzip_and_unlink(Path(Rotator(logs, "meili", date="2025-11-23", gzip=False).write(record("meili", "old-archive"))))
    with Service(collector, logs, state, start_at="end"):
        time.sleep(0.3)
        write_all(old, names("live", 5))
        fresh = Rotator(logs, "meili", date="2025-11-24", gzip=False)
        write_all(fresh, names("later-file", 5))
        expected = names("live", 5) + names("later-file", 5)
        got = wait_for(collector, expected)
    write_all(old, names("while-stopped", 5))
    with Service(collector, logs, state, start_at="end"):  # not a first start: nothing skipped
        got = wait_for(collector, expected + names("while-stopped", 5))
    old.close()
    exactly_once(got, expected + names("while-stopped", 5))


def test_O16_an_empty_file_is_picked_up_once_written_to(collector: DevCollector, dirs: tuple[Path, Path]) -> None:
    logs, state = dirs
    path = logs / "error-2025-11-24.log"
    path.touch()
    with Service(collector, logs, state, start_at="end"):
        time.sleep(0.3)
        with path.open("ab") as out:
            out.write(record("error", "first-write"))
        got = wait_for(collector, ["first-write"])
    assert got == Counter({"first-write": 1})


def test_O10_renamed_while_stopped_and_a_new_file_only_the_new_records(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    login = logs / "login-logs.log"
    big = "x" * 1000
    login.write_bytes(record("login", f"old-{big}"))
    with Service(collector, logs, state):
        wait_for(collector, [f"old-{big}"])
    login.rename(logs / "login-logs.log.1")
    login.write_bytes(record("login", f"new-{big}"))
    with Service(collector, logs, state):
        got = wait_for(collector, [f"old-{big}", f"new-{big}"])
    exactly_once(got, [f"old-{big}", f"new-{big}"])


class Unacked:
    """The real exporter; once `armed`, the process "dies" right after the next batch was acknowledged, before
    its checkpoint was committed (the window a kill -9 can hit)."""

    def __init__(self, shipper: Shipper, *, armed: bool = False) -> None:
        self.shipper = shipper
        self.armed = armed
        self.in_flight: list[str] = []

    def ship(self, events: Sequence[Event]) -> None:
        self.shipper.ship(events)
        if self.armed and events:
            self.in_flight = [str(e.body) for e in events]
            raise SystemExit("killed between acknowledgement and checkpoint")

    def close(self) -> None:
        self.shipper.close()


def test_V5_restart_with_unacknowledged_batches_resends_only_the_batch_in_flight(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    rotator = Rotator(logs, "error", max_size=40_000, gzip=True)
    texts = names("v5", 1500)
    write_all(rotator, texts)
    holder: list[Unacked] = []

    def wrap(shipper: Shipper) -> Unacked:
        holder.append(Unacked(shipper, armed=True))
        return holder[0]

    service = Service(collector, logs, state, wrap=wrap)
    with service:
        service.thread.join(10)
    assert isinstance(service.error, SystemExit)
    in_flight = holder[0].in_flight
    with Service(collector, logs, state):
        got = wait_for(collector, texts)
    rotator.close()
    assert set(got) == set(texts)
    assert {t for t, n in got.items() if n > 1} == set(in_flight)
    assert 0 < len(in_flight) <= service.config.export.batch_max_records  # one request, not the whole read


# Truncation and copytruncate (O3, O8, O9, L9, Fluent Bit F3, Vector H2) -------------------------------------
def test_O8_F3_truncate_then_write_reads_only_the_new_records(collector: DevCollector, dirs: tuple[Path, Path]) -> None:
    logs, state = dirs
    path = logs / "login-logs.log"
    with Service(collector, logs, state), path.open("ab") as out:
        write = out.write
        for text in names("pre", 20):
            write(record("login", text))
        out.flush()
        wait_for(collector, names("pre", 20))
        out.truncate(0)
        out.seek(0)
        for text in names("post", 10):
            write(record("login", text))
        out.flush()
        got = wait_for(collector, names("pre", 20) + names("post", 10))
    exactly_once(got, names("pre", 20) + names("post", 10))


def test_O9_H2_copytruncate_then_both_files_written_each_record_once(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    path = logs / "login-logs.log"
    with Service(collector, logs, state):
        with path.open("ab") as out:
            for text in names("orig", 30):
                out.write(record("login", text))
        wait_for(collector, names("orig", 30)[:5], timeout=5)
        with path.open("ab") as out:
            for text in names("unread", 10):  # written just before the copy, perhaps not read yet
                out.write(record("login", text))
        copytruncate(path, logs / "login-logs.log.1")
        with path.open("ab") as out:
            out.write(record("login", "to-original"))
        with (logs / "login-logs.log.1").open("ab") as out:
            out.write(record("login", "to-copy"))
        expected = [*names("orig", 30), *names("unread", 10), "to-original", "to-copy"]
        got = wait_for(collector, expected)
    exactly_once(got, expected)


def test_L9_login_log_truncated_while_stopped_is_read_again_from_its_start(
    collector: DevCollector, dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    logs, state = dirs
    login = tmp_path / "app" / "login-logs.log"
    login.parent.mkdir()
    login.write_bytes(b"".join(record("login", t) for t in names("before-restart", 10)))
    with Service(collector, logs, state, login_log=login):
        wait_for(collector, names("before-restart", 10))
    login.write_bytes(b"".join(record("login", t) for t in names("after-restart", 12)))  # the container restarted
    with Service(collector, logs, state, login_log=login):
        got = wait_for(collector, names("before-restart", 10) + names("after-restart", 12))
    exactly_once(got, names("before-restart", 10) + names("after-restart", 12))


@pytest.mark.parametrize("pause", [0.0, 0.005])
def test_O3_repeated_copytruncate_with_shifted_copies_while_writing(
    pause: float, collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    path = logs / "login-logs.log"
    expected = names("ct", 120)
    with Service(collector, logs, state), path.open("ab") as out:
        for i, text in enumerate(expected):
            out.write(record("login", text))
            out.flush()
            if i % 30 == 29:  # logrotate (rotate 4): shift .2 -> .3, .1 -> .2, copy to .1, truncate
                for n in (3, 2, 1):
                    if (logs / f"login-logs.log.{n}").exists():
                        (logs / f"login-logs.log.{n}").rename(logs / f"login-logs.log.{n + 1}")
                copytruncate(path, logs / "login-logs.log.1")
            time.sleep(pause)
        got = wait_for(collector, expected)
    exactly_once(got, expected)


def test_O4_archives_deleted_before_they_are_read_lose_only_themselves_and_repeat_nothing(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    rotator = Rotator(logs, "error", max_size=600, gzip=True)
    texts = names("del", 200)
    slow = Timing(poll_interval=0.3, scan_interval=0.3, flush_after=0.3, release_after=0.5, linger=0.02)
    with Service(collector, logs, state, timing=slow):
        for i, text in enumerate(texts):
            rotator.write(record("error", text))
            if i % 40 == 39:
                for archive in sorted(logs.glob("*.gz"))[:-1]:
                    archive.unlink()  # retention racing the reader
        rotator.close()
        time.sleep(1.0)
        got = wait_for(collector, texts[-5:])
    assert set(got) <= set(texts)
    assert all(n == 1 for n in got.values())
    assert set(texts[-5:]) <= set(got)


def test_O18_daily_files_that_begin_alike_are_different_files(collector: DevCollector, dirs: tuple[Path, Path]) -> None:
    """meiliSync lines carry no timestamp: two days' files can start with the same bytes."""
    logs, state = dirs
    same_start = b"".join(record("meili", "[indexSync] start") for _ in range(3))
    day1, day2 = logs / "meiliSync-2025-11-24.log", logs / "meiliSync-2025-11-25.log"
    day1.write_bytes(same_start + record("meili", "day1-end"))
    with Service(collector, logs, state):
        wait_for(collector, ["day1-end"])
        day2.write_bytes(same_start + record("meili", "day2-end"))
        got = wait_for(collector, ["day1-end", "day2-end"])
    assert got == Counter({"[indexSync] start": 6, "day1-end": 1, "day2-end": 1})
    with day2.open("ab") as out:
        out.write(record("meili", "day2-after-restart"))
    with Service(collector, logs, state):
        got = wait_for(collector, ["day2-after-restart"])
    assert got == Counter({"[indexSync] start": 6, "day1-end": 1, "day2-end": 1, "day2-after-restart": 1})


# Moves (O1, O5, O6, O7) -----------------------------------------------------------------------------------
def test_O1_rename_and_recreate_three_times_all_records_once(collector: DevCollector, dirs: tuple[Path, Path]) -> None:
    logs, state = dirs
    path = logs / "login-logs.log"
    expected: list[str] = []
    with Service(collector, logs, state):
        for rotation in range(3):
            texts = names(f"rot{rotation}", 3)
            path.write_bytes(b"".join(record("login", t) for t in texts))
            expected += texts
            time.sleep(0.05)
            path.rename(logs / f"login-logs.log.{rotation + 1}")
        got = wait_for(collector, expected)
    exactly_once(got, expected)


def test_O5_O6_O7_moved_out_of_the_directory_is_read_to_its_end_and_never_again(
    collector: DevCollector, dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    logs, state = dirs
    path = logs / "error-2025-11-24.log"
    elsewhere = tmp_path / "elsewhere.log"
    with Service(collector, logs, state):
        with path.open("ab") as out:
            out.write(record("error", "testlog1"))
            out.flush()
            wait_for(collector, ["testlog1"])
            out.write(record("error", "testlog2"))
            out.flush()
            path.rename(elsewhere)
            out.write(record("error", "testlog2b"))  # written through the old handle after the move
        Rotator(logs, "error", date="2025-11-25", gzip=False).write(record("error", "testlog3"))
        got = wait_for(collector, ["testlog1", "testlog2", "testlog2b", "testlog3"])
        time.sleep(0.8)  # past release_after: the moved file is let go, not read again
    exactly_once(bodies(collector), ["testlog1", "testlog2", "testlog2b", "testlog3"])
    order = [str(r["body"]) for r in collector.logs()]
    assert order.index("testlog2") < order.index("testlog3")
    assert got["testlog1"] == 1


def test_O2_three_families_rotating_slowly_while_written(collector: DevCollector, dirs: tuple[Path, Path]) -> None:
    logs, state = dirs
    rotators = [Rotator(logs, family, max_size=1200, gzip=True) for family in ("error", "debug", "meili")]
    expected: list[str] = []
    with Service(collector, logs, state):
        for i in range(30):
            for rotator in rotators:
                text = f"{rotator.family}-{i}"
                rotator.write(record(rotator.family, text))
                expected.append(text)
            time.sleep(0.005)
        got = wait_for(collector, expected)
    for rotator in rotators:
        rotator.close()
    exactly_once(got, expected)


# Bad conditions ----------------------------------------------------------------------------------------------
def test_an_unreadable_file_is_counted_and_retried_while_others_flow(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    blocked = logs / "error-2025-11-24.log"
    blocked.mkdir()  # a log name that cannot be read (permissions do not stop root, a directory does)
    with Service(collector, logs, state) as service:
        Rotator(logs, "meili", gzip=False).write(record("meili", "open"))
        wait_for(collector, ["open"])
        assert service.metrics.snapshot().errors.get("unreadable_file", 0) >= 1
        blocked.rmdir()
        blocked.write_bytes(record("error", "unblocked"))
        got = wait_for(collector, ["open", "unblocked"])
    exactly_once(got, ["open", "unblocked"])


def test_an_unwritable_state_dir_is_reported_shipping_continues_and_the_checkpoint_follows(
    collector: DevCollector, dirs: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    logs, _ = dirs
    blocker = logs.parent / "blocker"
    blocker.write_bytes(b"")  # the state dir's parent is a file: every write fails, as on a read-only mount
    state = blocker / "state"
    rotator = Rotator(logs, "error", gzip=False)
    with Service(collector, logs, state):
        write_all(rotator, names("ro", 10))
        got = wait_for(collector, names("ro", 10))
        assert "CANNOT WRITE CHECKPOINTS" in caplog.text
        blocker.unlink()
        blocker.mkdir()
        time.sleep(0.3)
        saved = list(state.glob("*.json"))
        assert saved and saved[0].stat().st_mode & 0o777 == 0o600
    exactly_once(got, names("ro", 10))
    with Service(collector, logs, state):  # the checkpoint written late is used: nothing sent again
        time.sleep(0.5)
    rotator.close()
    exactly_once(bodies(collector), names("ro", 10))


def test_L10_a_first_start_from_the_beginning_reads_a_mixed_archive_directory_oldest_first(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    rotator = Rotator(logs, "error", max_size=500, gzip=True)
    texts = names("arch", 60)
    for i, text in enumerate(texts):
        if i == 30:
            rotator.new_day("2025-11-25")
        rotator.write(record("error", text))
    rotator.close()
    for age, path in enumerate(sorted(logs.iterdir())):  # modification times that say nothing about the order
        os.utime(path, (1_700_000_000 - 1000 * age, 1_700_000_000 - 1000 * age))
    with Service(collector, logs, state):
        got = wait_for(collector, texts)
    exactly_once(got, texts)
    assert [str(r["body"]) for r in collector.logs()] == texts


def test_A7_a_file_rewritten_atomically_with_the_same_beginning_sends_only_what_is_new(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    path = logs / "error-2025-11-24.log"
    first = b"".join(record("error", t) for t in names("kept", 5))
    path.write_bytes(first)
    with Service(collector, logs, state):
        wait_for(collector, names("kept", 5))
        temporary = logs / "rewrite.tmp"
        temporary.write_bytes(first + b"".join(record("error", t) for t in names("new", 3)))
        temporary.rename(path)  # a new inode under the same name, beginning with the same bytes
        got = wait_for(collector, names("kept", 5) + names("new", 3))
    exactly_once(got, names("kept", 5) + names("new", 3))


def test_the_offset_marker_catches_a_rewrite_that_keeps_the_first_kilobyte(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    """Fluent Bit's fix: same first bytes, longer than before, but not what was acknowledged at the offset."""
    logs, state = dirs
    login = logs / "login-logs.log"
    header = b"".join(record("login", f"same-start-{i:02}") for i in range(20))  # well over the fingerprint
    login.write_bytes(header + record("login", "old-tail"))
    with Service(collector, logs, state):
        wait_for(collector, ["old-tail"])
    login.write_bytes(header + record("login", "new-tail-1") + record("login", "new-tail-2") + record("login", "x"))
    with Service(collector, logs, state):
        got = wait_for(collector, ["old-tail", "new-tail-1", "new-tail-2", "x"])
    assert got["old-tail"] == 1 and got["new-tail-1"] == 1 and got["new-tail-2"] == 1 and got["x"] == 1


class ClockedRotator(Rotator):
    """LibreChat's rotator with its wall clock injected: the file's date follows `clock` at every write, so a
    clock stepped back across midnight reopens the previous day's name (and gzips the file it leaves)."""

    def __init__(self, logs_dir: Path, clock: list[dt.datetime]) -> None:
        super().__init__(logs_dir, "error", date=clock[0].strftime("%Y-%m-%d"), gzip=True)
        self.clock = clock

    def write_text(self, text: str) -> None:
        now = self.clock[0]
        if now.strftime("%Y-%m-%d") != self.date:
            self.new_day(now.strftime("%Y-%m-%d"))
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.write(f'{{"level":"error","message":"{text}","timestamp":"{stamp}"}}\n'.encode())


def test_a_clock_stepped_back_an_hour_across_a_date_rotation_loses_and_repeats_nothing(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    clock = [dt.datetime(2025, 11, 24, 23, 59, 50, tzinfo=dt.UTC)]
    rotator = ClockedRotator(logs, clock)
    steps = [
        ("before-midnight", dt.timedelta(0)),
        ("after-midnight", dt.timedelta(seconds=20)),  # 00:00:10: the 24th's file is gzipped, the 25th's begins
        ("stepped-back", dt.timedelta(hours=-1)),  # 23:00:10 again: a new 24th's file beside its archive
        ("caught-up", dt.timedelta(hours=1, seconds=5)),  # 00:00:15: the 25th once more
    ]
    written: list[str] = []
    with Service(collector, logs, state):
        for tag, step in steps:
            clock[0] += step
            texts = names(tag, 20)
            for text in texts:
                rotator.write_text(text)
            written += texts
            wait_for(collector, written)  # an hour passes between steps: each file is read before the next
        rotator.rotate()
        rotator.write_text("last")
        rotator.close()
        got = wait_for(collector, [*written, "last"])
    exactly_once(got, [*written, "last"])
    uids_unique(collector)
