"""systemd's notify protocol (sd_notify(3)) without a dependency: one datagram per state change.

The run loop calls `ready()` after its first scan of the logs directory, `beat()` from its heartbeat (a
`WATCHDOG=1` goes out at most every half `WatchdogSec`, so calling it often is cheap), and `stopping()`
when it starts draining. Outside systemd ($NOTIFY_SOCKET unset) every call does nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        # "@name" is a socket in the abstract namespace.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval = _watchdog_interval(env)
        self._clock = clock
        self._last_beat = float("-inf")

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *assignments: str) -> bool:
        """Sends `KEY=value` lines; False when not under systemd or the socket is gone."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(assignments).encode(), self._address)
        except OSError:
            return False  # losing a notification must never stop the shipper
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.send(*_status(text))

    def beat(self) -> bool:
        """`WATCHDOG=1` if half the watchdog period passed since the last one."""
        if self.watchdog_interval is None:
            return False
        now = self._clock()
        if now - self._last_beat < self.watchdog_interval / 2:
            return False
        self._last_beat = now
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "draining: shipping what was read, then saving checkpoints") -> bool:
        return self.send("STOPPING=1", *_status(status))


def _status(text: str) -> list[str]:
    return [f"STATUS={' '.join(text.split())}"] if text else []


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """WatchdogSec in seconds, when it is meant for this process (sd_watchdog_enabled(3))."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000
