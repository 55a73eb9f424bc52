"""Wake the tailer when a watched directory changes (inotify through watchdog).

inotify can miss events (queue overflow, network file systems, a directory created later), so the tailer
also reads every file each poll interval and rescans the directories now and then: the watcher only makes
the common case fast, it is never needed for correctness.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

# Events that change which files exist, so a rescan is due; our own reads only open and close files.
_STRUCTURAL: Final = frozenset({"created", "deleted", "moved"})
_IGNORED: Final = frozenset({"opened", "closed_no_write"})

log = logging.getLogger("logtail.source")


class Watcher(FileSystemEventHandler):
    def __init__(self, dirs: Iterable[Path]) -> None:
        self.wake = threading.Event()
        self._rescan = threading.Event()
        self._observer = Observer()
        for directory in dirs:
            if not directory.is_dir():
                continue  # the stat poll finds what appears there
            try:
                self._observer.schedule(self, str(directory), recursive=False)
            except OSError as exc:  # inotify limits: the stat poll still covers the directory
                log.warning("cannot watch %s (%s); polling it instead", directory, exc)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED:
            return
        if event.event_type in _STRUCTURAL:
            self._rescan.set()
        self.wake.set()

    def take_rescan(self) -> bool:
        """Whether files appeared, vanished or were renamed since the last call."""
        due = self._rescan.is_set()
        self._rescan.clear()
        return due

    def wait(self, timeout: float) -> None:
        self.wake.wait(timeout)
        self.wake.clear()

    def start(self) -> None:
        try:
            self._observer.start()
        except OSError as exc:
            log.warning("file system events unavailable (%s); polling only", exc)

    def stop(self) -> None:
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=2)
