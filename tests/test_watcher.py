"""The watcher wakes a waiting tailer on writes and asks for a rescan when entries change; reads wake nobody,
and neither do writes while the tailer is busy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent, Mask, WatchDescriptor

from logtail.source.watcher import Watcher

SOON = 2.0


@pytest.fixture
def watcher(tmp_path: Path) -> Iterator[Watcher]:
    (tmp_path / "error-2025-11-24.log").write_bytes(b"{}\n")
    running = Watcher([tmp_path, tmp_path / "missing"])
    running.start()
    yield running
    running.stop()


def woken(watcher: Watcher, timeout: float) -> bool:
    awake = watcher.wake.wait(timeout)
    watcher.wake.clear()
    return awake


def write(path: Path) -> None:
    with path.open("ab") as log:
        log.write(b"{}\n")


def test_a_write_wakes_a_waiting_tailer_without_a_rescan(watcher: Watcher, tmp_path: Path) -> None:
    assert watcher.wait(0)  # writes were not asked for yet: the caller reads once more before it sleeps
    write(tmp_path / "error-2025-11-24.log")
    assert watcher.wait(SOON)
    assert not watcher.take_rescan()


def test_writes_while_the_tailer_works_wake_nobody(watcher: Watcher, tmp_path: Path) -> None:
    """Woken, the tailer reads until it finds nothing new: the writes meanwhile need no events, which would only
    cost the reader threads CPU, and the next wait asks for writes again."""
    live = tmp_path / "error-2025-11-24.log"
    watcher.wait(0)
    write(live)
    assert watcher.wait(SOON)
    for _ in range(3):
        write(live)
    assert not woken(watcher, 0.3)
    assert watcher.wait(SOON)  # asks for writes again and returns at once: the three writes are read
    write(live)
    assert watcher.wait(SOON)


def test_a_wait_that_times_out_keeps_asking_for_writes(watcher: Watcher, tmp_path: Path) -> None:
    watcher.wait(0)
    assert not watcher.wait(0.1)
    write(tmp_path / "error-2025-11-24.log")
    assert watcher.wait(SOON)


def test_a_directory_armed_while_the_tailer_works_is_asked_for_writes_at_the_next_wait(
    watcher: Watcher, tmp_path: Path
) -> None:
    later = tmp_path / "missing"  # named to the fixture's watcher, absent when it started
    later.mkdir()
    (later / "login-logs.log").write_bytes(b"")
    assert woken(watcher, SOON) and watcher.take_rescan()
    watcher.arm()  # before the rescan, while writes are not asked for
    assert watcher.wait(0)
    write(later / "login-logs.log")
    assert watcher.wait(SOON)
    assert not watcher.take_rescan()


def test_reading_a_file_wakes_nobody(watcher: Watcher, tmp_path: Path) -> None:
    for _ in range(3):
        (tmp_path / "error-2025-11-24.log").read_bytes()
    assert not woken(watcher, 0.3)


@pytest.mark.parametrize("change", ["create", "rename", "delete"])
def test_entries_that_change_ask_for_a_rescan(change: str, watcher: Watcher, tmp_path: Path) -> None:
    live = tmp_path / "error-2025-11-24.log"
    if change == "create":
        (tmp_path / "error-2025-11-25.log").write_bytes(b"")
    elif change == "rename":
        live.rename(tmp_path / "error-2025-11-24.log.1")
    else:
        live.unlink()
    assert woken(watcher, SOON)
    assert watcher.take_rescan()
    assert not watcher.take_rescan()  # taken once


def test_the_directory_going_away_asks_for_a_rescan(watcher: Watcher, tmp_path: Path) -> None:
    for entry in tmp_path.iterdir():
        entry.unlink()
    watcher.take_rescan()
    os.rmdir(tmp_path)
    assert woken(watcher, SOON)
    assert watcher.take_rescan()


def test_stop_ends_the_reader_thread(tmp_path: Path) -> None:
    watcher = Watcher([tmp_path])
    watcher.start()
    reader = watcher._inotify
    watcher.stop()
    assert reader is not None and not reader.is_alive()
    watcher.wake.clear()
    (tmp_path / "error-2025-11-24.log").write_bytes(b"{}\n")
    assert not woken(watcher, 0.3)


def test_a_directory_made_again_is_watched_again_once_armed(watcher: Watcher, tmp_path: Path) -> None:
    for entry in tmp_path.iterdir():
        entry.unlink()
    os.rmdir(tmp_path)
    assert woken(watcher, SOON) and watcher.take_rescan()
    tmp_path.mkdir()
    watcher.arm()  # the tailer arms before each scan
    (tmp_path / "error-2025-11-25.log").write_bytes(b"{}\n")
    assert woken(watcher, SOON)
    assert watcher.take_rescan()


def test_a_directory_that_appears_later_is_watched_once_armed(watcher: Watcher, tmp_path: Path) -> None:
    later = tmp_path / "missing"  # named to the fixture's watcher, absent when it started
    later.mkdir()
    watcher.wake.clear()
    watcher.take_rescan()
    watcher.arm()
    (later / "login-logs.log").write_bytes(b"{}\n")
    assert woken(watcher, SOON)
    assert watcher.take_rescan()


def test_a_lost_queue_of_events_asks_for_a_rescan(watcher: Watcher) -> None:
    """The kernel's event queue overflowed: watchdog tells the callback (7.1.1 and later again once the watches are
    repaired), and the files are listed again rather than trusted to have sent every event."""
    assert watcher._inotify is not None
    watcher.take_rescan()
    watcher.wake.clear()
    overflow = InotifyEvent(WatchDescriptor(-1), Mask(InotifyConstants.IN_Q_OVERFLOW), 0, b"")
    watcher._inotify.handle_event(overflow)
    assert watcher.take_rescan()
    assert woken(watcher, 0)
