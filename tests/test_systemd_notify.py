"""sd_notify messages on a real datagram socket, the watchdog cadence, and journald-shaped log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from logtail.service.journal import JournalFormatter, configure_logging, stderr_is_journal
from logtail.service.notify import Notifier


@pytest.fixture(autouse=True)
def logtail_logger() -> Iterator[None]:
    """configure_logging changes the process-wide `logtail` logger; other tests must not see that."""
    logger = logging.getLogger("logtail")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(2)
        yield sock, path


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_status_and_stopping_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.ready("following 4 files")
    assert received(sock) == ["READY=1", "STATUS=following 4 files"]
    assert notifier.status("lag 12 kB\nerror family")
    assert received(sock) == ["STATUS=lag 12 kB error family"]  # a newline would end the assignment
    assert notifier.stopping()
    assert received(sock)[0] == "STOPPING=1"


def test_abstract_socket_addresses_work() -> None:
    name = f"logtail-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(sock) == ["READY=1"]


def test_watchdog_pings_at_most_every_half_period(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    now = [100.0]
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"}, clock=lambda: now[0])
    assert notifier.watchdog_interval == 10.0
    assert notifier.beat()
    assert received(sock) == ["WATCHDOG=1"]
    now[0] += 4.9
    assert not notifier.beat()
    now[0] += 0.1
    assert notifier.beat()
    assert received(sock) == ["WATCHDOG=1"]


@pytest.mark.parametrize(
    "env",
    [
        {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid() + 1)},  # meant for another process
        {"WATCHDOG_USEC": "0"},
        {},
    ],
)
def test_no_watchdog_pings_unless_the_watchdog_is_ours(env: dict[str, str], tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), **env})
    assert notifier.watchdog_interval is None
    assert not notifier.beat()


def test_outside_systemd_or_with_the_socket_gone_nothing_fails(tmp_path: Path) -> None:
    assert not Notifier({}).enabled
    assert not Notifier({}).ready()
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).stopping()


def record(level: int, message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("logtail.commands.run", level, __file__, 1, message, None, None)
    rec.__dict__.update(extra)
    return rec


def test_json_lines_carry_level_logger_message_and_extras() -> None:
    line = JournalFormatter("json", journal=False).format(record(logging.WARNING, "export failed", family="debug"))
    fields = json.loads(line)
    assert fields["level"] == "warning" and fields["logger"] == "logtail.commands.run"
    assert fields["message"] == "export failed" and fields["family"] == "debug"
    assert fields["time"].endswith("Z")


def test_under_journald_lines_start_with_the_syslog_priority() -> None:
    plain = JournalFormatter("plain", journal=True)
    assert plain.format(record(logging.ERROR, "boom")) == "<3>error logtail.commands.run: boom"
    assert plain.format(record(logging.INFO, "ready")) == "<6>info logtail.commands.run: ready"
    assert JournalFormatter("json", journal=True).format(record(logging.WARNING, "x")).startswith('<4>{"time":')
    on_terminal = JournalFormatter("plain", journal=False).format(record(logging.INFO, "ready"))
    assert on_terminal.endswith("Z info logtail.commands.run: ready") and not on_terminal.startswith("<")


def test_the_journal_is_recognised_by_the_device_and_inode_systemd_announces(tmp_path: Path) -> None:
    with (tmp_path / "stream").open("w") as stream:
        status = os.fstat(stream.fileno())
        assert stderr_is_journal({"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}, stream)
        assert not stderr_is_journal({"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino + 1}"}, stream)
        assert not stderr_is_journal({}, stream)
        configure_logging("plain", "info", stream=stream, env={"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"})
        logging.getLogger("logtail.source").warning("rotated %s", "debug.log")
        logging.getLogger("logtail.source").debug("not shown at info")
    assert (tmp_path / "stream").read_text() == "<4>warning logtail.source: rotated debug.log\n"


def test_configure_logging_replaces_its_handler_instead_of_adding_one() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "debug", stream=first, env={})
    configure_logging("json", "debug", stream=second, env={})
    logging.getLogger("logtail").debug("once")
    assert first.getvalue() == "" and len(second.getvalue().splitlines()) == 1
