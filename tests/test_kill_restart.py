"""SIGKILL `logtail run` at random moments while LibreChat writes and rotates (gzip + unlink), restart it each
time, and count at the real collector by `log.record.uid` (issue 7, deliverable 2).

Nothing may be lost. A record may arrive twice only if it was in a batch the collector had acknowledged
when the kill came, before the checkpoint was saved: at most one batch (`tailer.BATCH` records) per kill.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Final

import pytest

from logtail.devcollector.collector import DevCollector
from logtail.source.tailer import BATCH
from tests.test_outage import Service, Writer, tree_pids, uids_on_disk, wait_for_uids

KILLS: Final = 20  # about 30 s with the restarts


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_during_rotation_loses_nothing_and_repeats_at_most_the_batch_in_flight(
    collector: DevCollector, tmp_path: Path
) -> None:
    seed = time.time_ns()
    rng = random.Random(seed)
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    service = Service(logs, state, collector.http_endpoint, tmp_path / "logtail.log")
    moments: list[float] = []  # seconds the service had run when it was killed
    orphans: list[int] = []
    # Small files rotate several times a second, so every kill lands close to a rotation.
    with Writer(logs, rate=600, max_size=32 << 10, pad=300):
        service.start()
        for _ in range(KILLS):
            began = time.monotonic()
            time.sleep(rng.uniform(0.5, 2.0))
            assert service.process is not None and service.process.poll() is None, service.log_file.read_text()
            family = tree_pids(service.process.pid)
            os.kill(service.process.pid, signal.SIGKILL)
            service.process.wait()
            moments.append(round(time.monotonic() - began, 2))
            orphans += [pid for pid in family[1:] if not gone(pid)]
            service.start()
        time.sleep(1.0)
    expected = uids_on_disk(logs)
    got = wait_for_uids(collector, expected, timeout=90)
    assert service.stop() == 0, service.log_file.read_text()[-3000:]

    lost = len(expected - got.keys())
    duplicated = sum(n - 1 for n in got.values())
    summary = (
        f"seed {seed}: {KILLS} SIGKILLs at {moments} s after each start; {len(expected)} records, "
        f"lost {lost}, duplicated {duplicated} (bound {KILLS} x {BATCH}), unknown {len(got.keys() - expected)}"
    )
    print(summary)  # shown with `pytest -s`
    assert lost == 0 and not got.keys() - expected, summary
    assert duplicated <= KILLS * BATCH, summary
    assert orphans == [], f"processes left running after their parent was killed: {orphans}"
    assert sum(1 for p in logs.iterdir() if p.name.endswith(".gz")) > KILLS


def gone(pid: int, within: float = 5.0) -> bool:
    """Whether `pid` exits within `within` seconds of its parent's death."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False
