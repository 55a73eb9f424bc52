"""`logtail run` over container log files while the runtime writes and rotates them, against the real collector.

A writer thread plays LibreChat's `CONSOLE_JSON` output through Docker's json-file driver or the kubelet's CRI
files (`fixtures/containers/wrap.py`): small files, so they are renamed, gzipped and (CRI) restarted as `1.log`,
`2.log` many times; every 40th record is over 16 KiB (partial entries) and stderr lines come in between. The
service is SIGKILLed at random moments and restarted, once stopped with SIGTERM; at the end every record on disk
arrived, counted by `log.record.uid`, and no more than the batch in flight per kill arrived twice.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Final

import orjson
import pytest

from fixtures.containers.wrap import MAX_LINE, CriLog, DockerLog
from logtail.devcollector.collector import DevCollector
from logtail.source.tailer import BATCH
from tests.test_outage import Service, uids_on_disk, wait_for_uids

KILLS: Final = 8
CONTAINER_ID: Final = "ab" * 32


class ContainerWriter:
    """LibreChat's JSON console, as the runtime writes it to the node's files."""

    def __init__(self, root: Path, kind: str, *, rate: float = 300.0, max_size: int = 48 << 10) -> None:
        self.log: DockerLog | CriLog
        if kind == "docker":
            self.log = DockerLog(root, CONTAINER_ID, max_size=max_size, max_file=100_000)
        else:
            pod = ("librechat", "librechat-api-0", "1b2c3d4e-5f60-4a1b-9c8d-7e6f5a4b3c2d", "api")
            self.log = CriLog(root, *pod, max_size=max_size)
        self.rate = rate
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ContainerWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        began = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - began) * self.rate)
            while self.written < due:
                self._write(self.written)
                self.written += 1
            self._stop.wait(0.01)

    def _write(self, n: int) -> None:
        now = time.time_ns()
        pad = "y" * (2 * MAX_LINE + 100) if n % 40 == 0 else "x" * 200
        line = orjson.dumps(
            {"level": "info", "message": f"[indexSync] w-{n} {pad}", "timestamp": f"2025-11-24T23:25:{n % 60:02d}.000Z"}
        )
        self.log.write(line, "stdout", now)
        if n % 7 == 0:
            self.log.write(b"(node:1) Warning: something on stderr", "stderr", now + 1)
        if isinstance(self.log, CriLog) and n % 1500 == 1499:
            self.log.restart()


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", ["docker", "cri"])
def test_sigkill_while_the_runtime_rotates_loses_nothing(collector: DevCollector, tmp_path: Path, kind: str) -> None:
    seed = time.time_ns()
    rng = random.Random(seed)
    root, state = tmp_path / kind, tmp_path / "state"
    root.mkdir()
    # `logtail run --logs-dir ROOT`: that ROOT holds Docker's or the kubelet's files is found by looking.
    service = Service(root, state, collector.http_endpoint, tmp_path / "logtail.log")
    with ContainerWriter(root, kind) as writer:
        time.sleep(0.2)  # the container's directory exists before the service looks
        service.start()
        for i in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.0))
            assert service.process is not None and service.process.poll() is None, service.log_file.read_text()
            if i == KILLS // 2:  # a clean stop, once the service's signal handlers are in place
                while not catches_sigterm(service.process.pid):
                    time.sleep(0.05)
                assert service.stop() == 0, service.log_file.read_text()[-3000:]
            else:
                os.kill(service.process.pid, signal.SIGKILL)
                service.process.wait()
            service.start()
        time.sleep(1.0)
    expected = uids_on_disk(root)
    assert len(expected) >= writer.written  # stdout and stderr records, none merged or split
    got = wait_for_uids(collector, expected, timeout=90)
    assert service.stop() == 0, service.log_file.read_text()[-3000:]
    lost = len(expected - got.keys())
    duplicated = sum(n - 1 for n in got.values())
    summary = f"seed {seed}, {kind}: {len(expected)} records, lost {lost}, duplicated {duplicated}"
    print(summary)
    assert lost == 0 and not got.keys() - expected, summary
    assert duplicated <= KILLS * BATCH, summary
    records = [r for r in collector.logs() if r["attributes"].get("log.iostream") == "stdout"]
    assert {len(str(r["body"])) > 2 * MAX_LINE for r in records} == {True, False}  # long lines arrived whole
    rotated = [p for p in root.rglob("*") if p.name.endswith(".gz")]
    assert len(rotated) > KILLS, "the runtime should have rotated and gzipped files during the run"


def catches_sigterm(pid: int) -> bool:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("SigCgt:"):
            return bool(int(row.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False
