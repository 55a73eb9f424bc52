"""Collector outages while LibreChat keeps writing and rotating (issue 7, deliverable 1).

The collector is down when `logtail run` starts, comes up, goes down again for 10 s and returns, while a
writer appends to the error and debug files and rotates them the way LibreChat does (gzip, then unlink).
At the end every record on disk arrives exactly once, counted by `log.record.uid`; the service never
exits on its own; its memory stays bounded although the backlog is many megabytes (the files are the
buffer); and its lag, read from the health endpoint, grows during the outage and drains afterwards.
"""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import orjson
import pytest

from logtail.devcollector.collector import DevCollector, free_port
from logtail.source.files import discover
from logtail.source.read import read_events
from tests.rotator import Rotator
from tests.test_replay import LOGTAIL
from tests.test_rotation import record

MB: Final = 1 << 20


class Writer:
    """LibreChat writing to the error and debug files from its own thread, rotating with gzip + unlink."""

    def __init__(self, logs: Path, *, rate: float = 400.0, max_size: int = 256 << 10, pad: int = 2500) -> None:
        self.rotators = [Rotator(logs, family, max_size=max_size, gzip=True) for family in ("error", "debug")]
        self.rate = rate  # records per second, all files together
        self.pad = "x" * pad  # big records: a backlog of megabytes without a flood of requests
        self.written = 0
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        began = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - began) * self.rate)
            while self.written < due:
                rotator = self.rotators[self.written % len(self.rotators)]
                data = record(rotator.family, f"w-{self.written} {self.pad}")
                rotator.write(data)
                self.written += 1
                self.bytes += len(data)
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for rotator in self.rotators:
            rotator.close()


def uids_on_disk(logs: Path) -> set[str]:
    """`log.record.uid` of every record in every file left in `logs` (archives included)."""
    uids = [str(e.attributes["log.record.uid"]) for f in discover([logs]) for e in read_events(f)]
    assert len(uids) == len(set(uids))
    return set(uids)


def received(collector: DevCollector) -> Counter[str]:
    return Counter(str(r["attributes"]["log.record.uid"]) for r in collector.logs())


def wait_for_uids(collector: DevCollector, expected: set[str], timeout: float) -> Counter[str]:
    """What arrived once every expected uid did (or the time is up), after a short settle for extras."""
    deadline = time.monotonic() + timeout
    got = received(collector)
    while not expected <= got.keys() and time.monotonic() < deadline:
        time.sleep(0.25)
        got = received(collector)
    time.sleep(0.5)
    return received(collector)


def tree_pids(pid: int) -> list[int]:
    """`pid` and all its descendants (the service may fork parse workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            todo += [int(child) for child in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            continue
    return found


def tree_rss(pid: int) -> int:
    """Resident memory of `pid` and all its descendants, in bytes."""
    total = 0
    for member in tree_pids(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


@dataclass
class Service:
    """`logtail run` as a process, with its health endpoint sampled in the background."""

    logs: Path
    state: Path
    endpoint: str
    log_file: Path
    health_port: int = field(default_factory=free_port)
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (time, lag bytes, tree RSS)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [LOGTAIL, "run", "--logs-dir", str(self.logs), "--state-dir", str(self.state)]
        command += ["--endpoint", self.endpoint, "--start-at", "beginning", "--poll-interval", "0.05"]
        command += ["--set", f"self.health_address=127.0.0.1:{self.health_port}"]
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def lag(self) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as answer:
                body = answer.read()
        except urllib.error.HTTPError as refused:  # 503 while stalled still carries the document
            body = refused.read()
        except OSError:
            return None
        return int(sum(orjson.loads(body)["lag_bytes"].values()))

    def sample(self) -> tuple[float, int, int] | None:
        assert self.process is not None
        lag = self.lag()
        if lag is None:
            return None
        row = (time.monotonic(), lag, tree_rss(self.process.pid))
        self.samples.append(row)
        return row

    def run_for(self, seconds: float) -> None:
        """Sample every 0.25 s for `seconds`; the service must stay up all along."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            assert self.process is not None and self.process.poll() is None, self.log_file.read_text()[-3000:]
            self.sample()
            time.sleep(0.25)

    def stop(self) -> int:
        assert self.process is not None
        self.process.terminate()
        try:
            return self.process.wait(20)
        finally:
            self.process.kill()
            self.process.wait()


def peak(rows: list[tuple[float, int, int]], since: float, until: float, column: int) -> int:
    return max((row[column] for row in rows if since <= row[0] <= until), default=0)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_outages_while_writing_and_rotating_lose_nothing_and_memory_stays_bounded(
    collector: DevCollector, tmp_path: Path
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    collector.kill()  # down when logtail starts
    service = Service(logs, state, collector.http_endpoint, tmp_path / "logtail.log")
    with Writer(logs, rate=1000) as writer:
        service.start()
        service.run_for(5)
        first_down_bytes = writer.bytes
        collector.start()
        service.run_for(8)  # catches up
        collector.stop()  # not kill(): rotel acknowledges before it writes, so a kill loses acknowledged records
        outage_start, outage_from_bytes = time.monotonic(), writer.bytes
        service.run_for(10)
        outage_end, backlog = time.monotonic(), writer.bytes - outage_from_bytes
        collector.start()
        service.run_for(5)
    expected = uids_on_disk(logs)
    stopped_writing = time.monotonic()
    got = wait_for_uids(collector, expected, timeout=90)  # generous: under CPU load the catch-up takes long
    late = time.monotonic() - stopped_writing - 0.5  # less the settle wait_for_uids does
    service.run_for(2)  # the lag has drained once everything is acknowledged
    assert service.stop() == 0, service.log_file.read_text()[-3000:]

    lost = expected - got.keys()
    duplicated = sum(n - 1 for n in got.values())
    assert (len(lost), duplicated, len(got.keys() - expected)) == (0, 0, 0)
    assert len(expected) == writer.written
    assert any(p.name.endswith(".gz") for p in logs.iterdir())

    samples = service.samples
    rss_before = peak(samples, 0, outage_start, 2)
    rss_during = peak(samples, outage_start, outage_end + 5, 2)
    print(  # the numbers behind the verdict, shown with `pytest -s`
        f"outage: {writer.written} records, {len(expected)} uids on disk, {len(got)} received, lost {len(lost)}, "
        f"duplicated {duplicated}; the last arrived {late:.1f} s after writing stopped; "
        f"backlog {backlog / MB:.1f} MB; tree RSS {rss_before / MB:.0f} MB before, "
        f"{rss_during / MB:.0f} MB during the outage; lag peak {peak(samples, 0, 1e12, 1)} bytes, last {samples[-1][1]}"
    )
    assert first_down_bytes > MB and backlog > 2 * MB
    assert rss_during < rss_before + backlog / 2, (rss_before, rss_during, backlog)
    assert rss_during < 300 * MB
    assert peak(samples, outage_end, 1e12, 1) > 0 and samples[-1][1] == 0  # a lag while catching up, then drained


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_lag_grows_while_the_collector_is_down(collector: DevCollector, tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    service = Service(logs, state, collector.http_endpoint, tmp_path / "logtail.log")
    with Writer(logs, rate=200) as writer:
        service.start()
        service.run_for(2)
        collector.stop()
        outage_start, written_before = time.monotonic(), writer.bytes
        service.run_for(5)
        written_during = writer.bytes - written_before
    collector.start()
    rows = [row for row in service.samples if row[0] >= outage_start]
    try:
        assert rows[-1][1] - rows[0][1] > written_during / 2, (rows[0], rows[-1], written_during)
    finally:
        assert service.stop() == 0
