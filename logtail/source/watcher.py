"""Wake the tailer when a watched directory changes (inotify, through watchdog's inotify reader).

inotify can miss events (queue overflow, network file systems, a directory created later), so the tailer
also reads every file each poll interval and rescans the directories now and then: the watcher only makes
the common case fast, it is never needed for correctness. Where inotify is unavailable (another kernel,
exhausted limits) the tailer simply polls.

watchdog's `InotifyFD` is used directly rather than its `Observer`: the observer hands every event through
three threads and builds an event object per write, which at LibreChat's write rate cost several per cent
of a core for nothing but a wake-up. Here the reader's threads set two flags, and writes are asked for only
while the tailer sleeps in `wait`: while it reads and ships, the rounds and their linger pick the writes up
anyway, and each write's event still cost the two threads more than a third of the tailer's CPU at 2 000
records/s (their wake-ups and the GIL they take from the loop).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from watchdog.utils import UnsupportedLibcError

try:
    from watchdog.observers.inotify_c import (
        CallbackId,
        InotifyEvent,
        InotifyFD,
        Mask,
        inotify_add_watch,
        inotify_rm_watch,
    )
except UnsupportedLibcError:  # not Linux: polling only
    InotifyFD = None  # type: ignore[assignment,misc]

log = logging.getLogger("logtail.source")

# inotify(7) bits. Entries appearing, vanishing or being renamed wake the tailer and call for a rescan, always;
# writes wake it while it waits. Opens and closes (ours on every read, LibreChat's) are not asked for.
IN_MODIFY, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE, IN_DELETE_SELF = 0x2, 0x40, 0x80, 0x100, 0x200, 0x400
_STRUCTURAL: Final = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
_MASK: Final = _STRUCTURAL | IN_DELETE_SELF


class Watcher:
    def __init__(self, dirs: Iterable[Path]) -> None:
        self.wake = threading.Event()
        self._rescan = threading.Event()
        self._dirs = list(dirs)
        self._inotify: InotifyFD | None = None
        self._armed: dict[Path, int] = {}  # directory -> its watch; gone when the directory goes
        self._refused: set[Path] = set()  # directories whose watch failed, reported once
        self._writes = False  # whether the watches ask for IN_MODIFY: only while the tailer waits
        self._lock = threading.Lock()

    # inotify callbacks, on the reader's thread -----------------------------------------------------------
    def on_event(self, event: InotifyEvent) -> None:
        if event.mask & _STRUCTURAL:
            self._rescan.set()
        self.wake.set()

    def on_watch_deleted(self, wd: int) -> None:
        # The directory itself went away: `arm` watches it again once it is back.
        with self._lock:
            self._armed = {directory: armed for directory, armed in self._armed.items() if armed != wd}
        self.on_queue_overflow()

    def on_queue_overflow(self) -> None:
        self._rescan.set()
        self.wake.set()

    def on_events_lost(self) -> None:
        """watchdog 7.1.1 and later: the queue overflowed and every watch is repaired; rescan what changed."""
        self.on_queue_overflow()

    # the tailer's side ---------------------------------------------------------------------------------
    def take_rescan(self) -> bool:
        """Whether files appeared, vanished or were renamed since the last call."""
        due = self._rescan.is_set()
        self._rescan.clear()
        return due

    def wait(self, timeout: float) -> bool:
        """Sleep until a watched directory changes or `timeout` passes; whether something (may have) changed.

        A call that finds writes not asked for asks for them and returns at once: a write made since the
        caller's last read sent no event, so the caller reads once more before it sleeps. Woken, writes are
        not asked for again until the next call."""
        if self._inotify is not None and not self._writes:
            self._ask_for_writes(True)
            return True
        woken = self.wake.wait(timeout)
        self.wake.clear()
        if woken and self._inotify is not None:
            self._ask_for_writes(False)
        return woken

    def _ask_for_writes(self, writes: bool) -> None:
        assert self._inotify is not None
        self._writes = writes
        with self._lock:
            armed = list(self._armed.items())
        for directory, wd in armed:
            # The watch's mask is replaced in place; watchdog's add_callback would do the same but warn each time.
            now = inotify_add_watch(self._inotify._inotify_fd, os.fsencode(directory), self._mask())
            if now not in (-1, wd):  # the directory was replaced: its new watch comes with the rescan's `arm`
                inotify_rm_watch(self._inotify._inotify_fd, now)

    def _mask(self) -> Mask:
        return Mask(_MASK | IN_MODIFY if self._writes else _MASK)

    def start(self) -> None:
        if InotifyFD is None:
            log.warning("file system events unavailable on this system; polling only")
            return
        try:
            self._inotify = InotifyFD()
        except OSError as exc:
            log.warning("file system events unavailable (%s); polling only", exc)
            return
        self.arm()
        self._inotify.start()

    def arm(self, dirs: Iterable[Path] | None = None) -> None:
        """Watch each directory that exists and is not watched yet: one that appeared, or was deleted and made
        again, since the last call. The tailer calls this before every scan; what is not watched is polled.
        `dirs` replaces the directories (a new pod's container directory on a node)."""
        if dirs is not None:
            self._dirs = list(dirs)
        if self._inotify is None:
            return
        for directory in self._dirs:
            if directory in self._armed or not directory.is_dir():
                continue
            try:
                wd = self._inotify.add_callback(os.fsencode(directory), self._mask(), self, CallbackId(1))
            except OSError as exc:  # inotify limits: the stat poll still covers the directory
                if directory not in self._refused:
                    self._refused.add(directory)
                    log.warning("cannot watch %s (%s); polling it instead", directory, exc)
                continue
            with self._lock:
                self._armed[directory] = wd

    def stop(self) -> None:
        if self._inotify is not None:
            self._inotify.stop()
            self._inotify.join(timeout=2)
            self._inotify = None
