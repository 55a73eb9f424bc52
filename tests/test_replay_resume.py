"""An interrupted `logtail replay` (Ctrl-C, SIGTERM) continues where it stopped: nothing lost, nothing sent twice."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from fixtures.generate import generate
from logtail.devcollector.collector import DevCollector
from logtail.source.parse_workers import BATCH
from tests.test_replay import LOGTAIL, event_uids, expected_events, replay, uids


@pytest.mark.slow
@pytest.mark.parametrize(("stop", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_mid_replay_then_the_same_command_delivers_the_rest_exactly_once(
    stop: signal.Signals, code: int, collector: DevCollector, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    # Rotated and gzipped like LibreChat's archives, so the stop lands inside one of many files.
    generate(logs, corpus="v0.8", families=("error", "debug", "meili"), records=20_000, max_size=1 << 19, gzip=True)
    state = tmp_path / "replay.json"
    args = [LOGTAIL, "replay", str(logs), "--endpoint", collector.http_endpoint, "--state", str(state)]
    running = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(collector.logs()) < 2000 and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        running.send_signal(stop)
        out, err = running.communicate(timeout=60)
    finally:
        running.kill()
    assert running.returncode == code, out + err
    assert "interrupted" in err
    first = len(collector.logs())
    expected = expected_events(logs)
    assert 0 < first < len(expected)

    done = replay(logs, "--endpoint", collector.http_endpoint, state=state)
    assert done.returncode == 0, done.stderr
    received = collector.wait_for_logs(len(expected))
    assert uids(received) == event_uids(expected)  # every record, each once


@pytest.mark.slow
def test_a_killed_replay_resumes_losing_nothing_and_repeating_at_most_the_batch_in_flight(
    collector: DevCollector, tmp_path: Path
) -> None:
    """SIGKILL leaves no time to save: the checkpoint saved after each acknowledged batch is what resumes."""
    logs = tmp_path / "logs"
    generate(logs, corpus="v0.8", families=("error", "debug"), records=20_000, max_size=1 << 19, gzip=True)
    state = tmp_path / "replay.json"
    args = [LOGTAIL, "replay", str(logs), "--endpoint", collector.http_endpoint, "--state", str(state)]
    running = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(collector.logs()) < 2000 and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        running.kill()
        running.wait()
    expected = event_uids(expected_events(logs))
    assert 0 < len(collector.logs()) < expected.total()

    done = replay(logs, "--endpoint", collector.http_endpoint, state=state)
    assert done.returncode == 0, done.stderr
    received = uids(collector.wait_for_logs(expected.total()))
    assert set(received) == set(expected)  # nothing lost
    assert received.total() - expected.total() <= BATCH  # at most the batch acknowledged but not yet saved
