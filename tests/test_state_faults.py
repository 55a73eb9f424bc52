"""The service's state directory misbehaving under a running `logtail run` (issue 13): the checkpoint file
replaced by a directory, and the directory's file system filling up. Shipping goes on, positions are kept in
memory, nothing acknowledged is forgotten, and the checkpoint is written again once it can be."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from logtail.devcollector.collector import DevCollector
from logtail.source.checkpoint import state_path
from tests.test_rotation import bodies, names, record, wait_for
from tests.test_security import run_service, stop_service

CANNOT = "CANNOT WRITE CHECKPOINTS"
AGAIN = "written again after"


def append(logs: Path, texts: list[str]) -> None:
    with (logs / "error-2025-11-24.log").open("ab") as out:
        out.write(b"".join(record("error", text) for text in texts))


def killed(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=30)
    return err


def test_a_checkpoint_replaced_by_a_directory_is_reported_and_written_again_once_it_is_gone(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    checkpoint = state_path(state, logs)
    process = run_service(logs, state, collector.http_endpoint)
    try:
        append(logs, names("a", 20))
        wait_for(collector, names("a", 20))
        checkpoint.unlink()
        checkpoint.mkdir()  # what a confused backup restore or a mistyped command leaves
        append(logs, names("b", 20))
        wait_for(collector, names("b", 20))
        time.sleep(0.5)
        checkpoint.rmdir()
        append(logs, names("c", 20))
        wait_for(collector, names("c", 20))
    finally:
        err = stop_service(process)
    assert err.count(CANNOT) == 1 and AGAIN in err, err
    process = run_service(logs, state, collector.http_endpoint)  # resumes from the checkpoint written again
    try:
        append(logs, names("d", 20))
        got = wait_for(collector, names("d", 20))
    finally:
        stop_service(process)
    assert got == {text: 1 for tag in "abcd" for text in names(tag, 20)}


@contextlib.contextmanager
def small_file_system(where: Path, size: str) -> Iterator[None]:
    """A tmpfs of `size` mounted on `where` (root only; skipped elsewhere)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Write `path` until its file system has no byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for block in (4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * block):
                    pass
    finally:
        os.close(fd)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_full_state_directory_forgets_nothing_acknowledged_and_shipping_resumes_when_space_returns(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    with small_file_system(state, "512k"), contextlib.ExitStack() as cleanup:

        def service() -> subprocess.Popen[str]:
            process = run_service(logs, state, collector.http_endpoint)
            cleanup.callback(process.kill)  # a failed assertion leaves no service behind
            return process

        filler = state / "filler"
        first = service()
        append(logs, names("a", 30))
        wait_for(collector, names("a", 30))
        fill(filler)
        append(logs, names("b", 30))  # shipped; its checkpoint cannot be written
        wait_for(collector, names("b", 30))
        time.sleep(1.0)
        assert first.poll() is None
        err = killed(first)  # a crash while full: the checkpoint on disk is the last one written (after a)
        assert CANNOT in err, err

        second = service()  # still full
        append(logs, names("c", 30))
        wait_for(collector, names("c", 30))
        filler.unlink()  # space returns
        append(logs, names("d", 30))
        wait_for(collector, names("d", 30))
        err = stop_service(second)
        assert AGAIN in err and "unusable" not in err, err

        third = service()
        append(logs, names("e", 30))
        wait_for(collector, names("e", 30))
        stop_service(third)
        assert os.path.getsize(state_path(state, logs)) > 0
    got = bodies(collector)
    assert all(got[text] == 1 for tag in "acde" for text in names(tag, 30)), got
    # b was acknowledged but its position never reached the disk before the crash: sent again, never lost.
    assert all(1 <= got[text] <= 2 for text in names("b", 30))
    assert set(got) == {text for tag in "abcde" for text in names(tag, 30)}
