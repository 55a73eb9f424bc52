"""Random sequences of writes, rotations, day changes, compressions, archive deletions, restarts and kills
(Vector's model test, prior-art.md §3.3 V15, and L12) against a model: every record written arrives, and a
record arrives twice only if it was in the request in flight when the service was killed."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from logtail.devcollector.collector import DevCollector
from logtail.export import Shipper
from tests.rotator import Rotator, copytruncate, gzip_and_unlink
from tests.test_rotation import Service, Unacked, record, wait_for

FAMILIES = ("error", "debug", "meili")
DAYS = ("2025-11-24", "2025-11-25", "2025-11-26")


class Tailing(RuleBasedStateMachine):
    collector: DevCollector
    delivered = 0  # records checked at the receiver, over all examples

    def __init__(self) -> None:
        super().__init__()
        self.collector.clear()
        self.root = Path(tempfile.mkdtemp(prefix="logtail-model-"))
        self.logs, self.state = self.root / "logs", self.root / "state"
        # meiliSync files are compressed by the `gzip_finished` step instead, some time after their rotation.
        self.rotators = {f: Rotator(self.logs, f, max_size=700, gzip=f != "meili") for f in FAMILIES}
        self.written: list[str] = []
        self.may_repeat: set[str] = set()  # records of batches in flight at a kill
        self.service: Service | None = None
        self.sink: Unacked | None = None
        self.day = 0

    # Steps -----------------------------------------------------------------------------------------------
    @rule(family=st.sampled_from(FAMILIES), n=st.integers(1, 25))
    def write(self, family: str, n: int) -> None:
        for _ in range(n):
            text = f"r{len(self.written)}"
            self.rotators[family].write(record(family, text))
            self.written.append(text)

    @rule(n=st.integers(1, 10))
    def write_login(self, n: int) -> None:
        with (self.logs / "login-logs.log").open("ab") as out:
            for _ in range(n):
                text = f"r{len(self.written)}"
                out.write(record("login", text))
                self.written.append(text)

    @rule()
    def copytruncate_login(self) -> None:
        """logrotate with copytruncate: shift the copies up, copy the log to `.1`, truncate it."""
        login = self.logs / "login-logs.log"
        if not login.exists():
            return
        copies = len(list(self.logs.glob("login-logs.log.*")))  # none is deleted: every record must arrive
        for n in range(copies, 0, -1):
            (self.logs / f"login-logs.log.{n}").rename(self.logs / f"login-logs.log.{n + 1}")
        copytruncate(login, self.logs / "login-logs.log.1")

    @rule(family=st.sampled_from(FAMILIES))
    def rotate(self, family: str) -> None:
        self.rotators[family].rotate()

    @precondition(lambda self: self.day < len(DAYS) - 1)
    @rule()
    def new_day(self) -> None:
        self.day += 1
        for rotator in self.rotators.values():
            rotator.new_day(DAYS[self.day])

    @rule(data=st.data())
    def gzip_finished(self, data: st.DataObject) -> None:
        """A rotated file compressed and unlinked a while after the rotation, perhaps before it was read."""
        current = self.rotators["meili"].path
        finished = sorted(p for p in self.logs.glob("meiliSync-*.log*") if not p.name.endswith(".gz") and p != current)
        if finished:
            gzip_and_unlink(data.draw(st.sampled_from(finished)))

    @rule(data=st.data())
    def delete_archive(self, data: st.DataObject) -> None:
        """Retention removes an archive, once what it holds has arrived (deleting unread records loses them)."""
        archives = sorted(self.logs.glob("*.gz"))
        if not archives or self.service is None:
            return
        wait_for(self.collector, self.written, timeout=10)
        data.draw(st.sampled_from(archives)).unlink()

    @precondition(lambda self: self.service is None)
    @rule()
    def start(self) -> None:
        def wrap(shipper: Shipper) -> Unacked:
            self.sink = Unacked(shipper)
            return self.sink

        self.service = Service(self.collector, self.logs, self.state, wrap=wrap).__enter__()

    @precondition(lambda self: self.service is not None)
    @rule()
    def stop(self) -> None:
        assert self.service is not None
        self.service.__exit__()
        self.service = None

    @precondition(lambda self: self.service is not None)
    @rule(family=st.sampled_from(FAMILIES))
    def kill(self, family: str) -> None:
        """Die right after the next acknowledged batch, before its checkpoint is saved."""
        assert self.service is not None and self.sink is not None
        self.sink.armed = True
        self.write(family, 3)
        self.service.thread.join(10)
        assert not self.service.thread.is_alive()
        self.may_repeat.update(self.sink.in_flight)
        self.service.__exit__()
        self.service = None

    @invariant()
    def service_alive(self) -> None:
        if self.service is not None:
            assert self.service.error is None, self.service.error

    # Check -----------------------------------------------------------------------------------------------
    def teardown(self) -> None:
        try:
            if self.service is None:
                self.start()
            got = wait_for(self.collector, self.written, timeout=20)
            assert self.service is not None
            self.service.__exit__()
            self.service = None
            missing = set(self.written) - set(got)
            assert not missing, f"lost {sorted(missing)[:10]}"
            repeated = {text for text, n in got.items() if n > 1}
            assert repeated <= self.may_repeat, f"sent twice without a kill: {sorted(repeated - self.may_repeat)[:10]}"
            assert set(got) == set(self.written)
            Tailing.delivered += len(self.written)
        finally:
            if self.service is not None:
                self.service.__exit__()
            for rotator in self.rotators.values():
                rotator.close()
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.mark.slow
def test_random_rotation_restart_and_kill_sequences_lose_nothing(collector: DevCollector) -> None:
    Tailing.collector = collector
    began = time.monotonic()
    run_state_machine_as_test(
        Tailing,
        settings=settings(
            max_examples=16,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        ),
    )
    assert time.monotonic() - began < 120
    assert Tailing.delivered > 500  # the examples wrote and checked real traffic
