"""`logtail run` as a process: flags, exit codes, SIGTERM drain, kill -9 and the backend going away."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from logtail.devcollector.collector import DevCollector, free_port
from tests.rotator import Rotator
from tests.test_replay import LOGTAIL
from tests.test_rotation import exactly_once, names, record, wait_for, write_all


def start(logs: Path, state: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    # Warnings only: an info line per file followed would fill the unread pipe in a long test.
    quiet = ("--set", "self.log_level=warning")
    return subprocess.Popen(
        [LOGTAIL, "run", "--logs-dir", str(logs), "--state-dir", str(state), "--poll-interval", "0.05", *quiet, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def stop(process: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str, float]:
    began = time.monotonic()
    process.send_signal(sig)
    try:
        _out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    return process.returncode, err, time.monotonic() - began


def test_a_missing_logs_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [LOGTAIL, "run", "--logs-dir", str(tmp_path / "nope"), "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "nope" in done.stderr


def test_without_a_logs_directory_setting_run_says_how_to_give_one_and_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "logtail.toml"
    empty.write_text("")  # not /etc/logtail/logtail.toml, whatever this machine has there
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGTAIL_", "OTEL_"))} | {
        "LOGTAIL_CONFIG": str(empty)
    }
    done = subprocess.run([LOGTAIL, "run"], capture_output=True, text=True, timeout=30, check=False, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "source.logs_dir: required; set it in the configuration file, as LOGTAIL_SOURCE_LOGS_DIR or with --set "
        "source.logs_dir=..."
    ]


def test_bad_settings_are_one_line_each_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [LOGTAIL, "run", "--logs-dir", str(tmp_path), "--endpoint", "ftp://x", "--set", "source.start_at=middle"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2
    assert any(line.startswith("export.endpoint") for line in lines)
    assert any(line.startswith("source.start_at") for line in lines)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_sigterm_ships_what_was_read_saves_the_checkpoint_and_exits_0_quickly(
    protocol: str, collector: DevCollector, tmp_path: Path
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    rotator = Rotator(logs, "error", max_size=3000, gzip=True)
    write_all(rotator, names("old", 20))  # before the first start: skipped (start at end)
    endpoint = collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint
    args = ("--endpoint", endpoint, "--protocol", protocol)
    process = start(logs, state, *args)
    time.sleep(2.0)
    write_all(rotator, names("live", 200))
    wait_for(collector, names("live", 200))
    code, err, took = stop(process)
    assert code == 0, err
    assert took < 10
    saved = list(state.glob("*.json"))
    assert len(saved) == 1 and saved[0].stat().st_mode & 0o777 == 0o600
    assert orjson.loads(saved[0].read_bytes())["format"] == "logtail-checkpoints"
    write_all(rotator, names("stopped", 30))
    process = start(logs, state, *args)
    got = wait_for(collector, names("live", 200) + names("stopped", 30))
    code, err, _ = stop(process, signal.SIGINT)
    rotator.close()
    assert code == 0, err
    exactly_once(got, names("live", 200) + names("stopped", 30))


@pytest.mark.slow
def test_L12_kill_9_while_writing_loses_nothing_and_repeats_only_unsaved_batches(
    collector: DevCollector, tmp_path: Path
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    rotator = Rotator(logs, "debug", max_size=20_000, gzip=True)
    process = start(logs, state, "--endpoint", collector.http_endpoint, "--start-at", "beginning")
    texts = names("k", 3000)
    for i in range(0, 3000, 500):
        write_all(rotator, texts[i : i + 500])
        if i == 1500:
            time.sleep(0.5)
            process.kill()
            process.wait()
            process = start(logs, state, "--endpoint", collector.http_endpoint, "--start-at", "beginning")
    got = wait_for(collector, texts, timeout=40)
    code, err, _ = stop(process)
    rotator.close()
    assert code == 0, err
    assert set(got) == set(texts)  # nothing lost
    assert sum(got.values()) - len(texts) <= 512  # at most the one request in flight at the kill (batch_max_records)


@pytest.mark.slow
def test_L11_backend_down_then_back_everything_arrives_once(collector: DevCollector, tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    rotator = Rotator(logs, "error", max_size=2000, gzip=True)
    process = start(logs, state, "--endpoint", collector.http_endpoint, "--start-at", "beginning")
    write_all(rotator, names("up", 20))
    wait_for(collector, names("up", 20))
    collector.kill()
    write_all(rotator, names("down", 100))  # rotated and gzipped while nothing can be shipped
    time.sleep(1.5)
    collector.start()
    got = wait_for(collector, names("up", 20) + names("down", 100), timeout=40)
    code, err, _ = stop(process)
    rotator.close()
    assert code == 0, err
    exactly_once(got, names("up", 20) + names("down", 100))


def test_a_corrupt_line_is_shipped_as_unparsed_and_the_file_keeps_flowing(
    collector: DevCollector, tmp_path: Path
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    path = logs / "error-2025-11-24.log"
    process = start(logs, state, "--endpoint", collector.http_endpoint, "--start-at", "beginning")
    with path.open("ab") as out:
        out.write(record("error", "fine-1"))
        out.write(b'{"level":"error","message":"Bearer [REDACTED]\n')  # L8: redaction ate the closing `"}`
        out.write(record("error", "fine-2"))
    rows = collector.wait_for_logs(3)
    code, err, _ = stop(process)
    assert code == 0, err
    assert len(rows) == 3
    assert [r["attributes"].get("logtail.parse_error") is not None for r in rows] == [False, True, False]


@pytest.mark.slow
def test_systemd_hears_ready_after_the_first_scan_watchdog_beats_even_with_the_backend_down_and_stopping(
    collector: DevCollector, tmp_path: Path
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    rotator = Rotator(logs, "error", gzip=False)
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(15)
        env = dict(os.environ, NOTIFY_SOCKET=address, WATCHDOG_USEC="400000")
        process = start(logs, state, "--endpoint", collector.http_endpoint, env=env)
        try:
            ready = sock.recv(4096).decode()
            beats = [sock.recv(4096).decode() for _ in range(2)]
            collector.kill()
            write_all(rotator, names("blocked", 3))  # the loop now waits in the exporter's retries
            time.sleep(1.0)
            beats += [sock.recv(4096).decode() for _ in range(2)]
            process.send_signal(signal.SIGTERM)
            messages = [sock.recv(4096).decode()]
            while not messages[-1].startswith("STOPPING=1"):
                messages.append(sock.recv(4096).decode())
            assert process.wait(15) == 0
        finally:
            process.kill()
            rotator.close()
    assert ready.startswith("READY=1") and "following 0 files" in ready
    assert beats == ["WATCHDOG=1"] * 4


@pytest.mark.slow
@pytest.mark.parametrize(("signals", "limit"), [(1, 10.0), (2, 3.0)])
def test_sigterm_with_the_backend_down_still_exits_0_within_10_s_and_nothing_is_lost(
    signals: int, limit: float, collector: DevCollector, tmp_path: Path
) -> None:
    """One signal waits a few seconds for the batch in hand to be acknowledged; a second gives it up at once."""
    logs, state = tmp_path / "logs", tmp_path / "state"
    rotator = Rotator(logs, "error", gzip=True)
    process = start(logs, state, "--endpoint", collector.http_endpoint, "--start-at", "beginning")
    write_all(rotator, names("sent", 5))
    wait_for(collector, names("sent", 5))
    collector.kill()
    write_all(rotator, names("stuck", 5))
    time.sleep(1.0)  # read, and being retried
    if signals == 2:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    code, err, took = stop(process)
    assert code == 0, err
    assert took < limit
    collector.start()
    process = start(logs, state, "--endpoint", collector.http_endpoint)
    got = wait_for(collector, names("sent", 5) + names("stuck", 5))
    stop(process)
    rotator.close()
    exactly_once(got, names("sent", 5) + names("stuck", 5))


def test_the_health_endpoint_serves_the_services_counters(collector: DevCollector, tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    rotator = Rotator(logs, "error", gzip=False)
    port = free_port()
    process = start(
        logs,
        state,
        *("--endpoint", collector.http_endpoint, "--start-at", "beginning"),
        *("--set", f"self.health_address=127.0.0.1:{port}"),
    )
    try:
        write_all(rotator, names("h", 3))
        assert set(wait_for(collector, names("h", 3))) == set(names("h", 3))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        code, err, _ = stop(process)
        rotator.close()
    assert code == 0, err
    assert "logtail_bytes_read" in text.replace(".", "_")
