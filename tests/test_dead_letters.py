"""The dead-letter file stays within its cap (`export.dead_letter_max_bytes`) plus one predecessor; every dead
letter is counted, and what the cap drops is logged once per rotation and counted (issue 13). A backend that
refuses every record is the stub (a real collector accepts everything)."""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from stub_backend import Reply, StubBackend
from test_export import make_config, sample_events

from logtail.devcollector.collector import free_port
from logtail.export import build_sink
from logtail.export.deadletters import predecessor
from logtail.service.health import prometheus_text
from logtail.service.selfmetrics import SelfMetrics
from parsers.event import Event
from tests.test_replay import LOGTAIL
from tests.test_rotation import record
from tests.test_run import start, stop

CAP = 8192
_DROPPED = re.compile(r"dropping the (\d+) older dead letters")


def refuse_all(records: list[LogRecord]) -> Reply:
    return Reply(rejected=len(records), message="schema not accepted")


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def dropped_in(text: str) -> list[int]:
    return [int(n) for n in _DROPPED.findall(text)]


@pytest.fixture(scope="module")
def corpus(samples: Path) -> list[Event]:
    return [e for e in sample_events(samples) if not e.attributes.get("logtail.twin")][:40]


def test_the_file_is_capped_with_one_predecessor_and_every_drop_is_logged_and_counted(
    corpus: list[Event], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = tmp_path / "dead.jsonl"
    metrics = SelfMetrics()
    with StubBackend(refuse_all) as backend:
        sink = build_sink(
            make_config(tmp_path, endpoint=backend.endpoint, dead_letter_max_bytes=CAP),
            self_metrics=metrics,
            stop=threading.Event(),
            dead_letter_path=dead,
        )
        with caplog.at_level(logging.WARNING, logger="logtail.export.deadletters"):
            for _ in range(10):
                sink.ship(corpus)
        sink.close()
    total = 10 * len(corpus)
    snapshot = metrics.snapshot()
    assert sink.summary.dead_lettered == snapshot.dead_letters == total
    assert dead.stat().st_size <= CAP and predecessor(dead).stat().st_size <= CAP
    rotations = [r.getMessage() for r in caplog.records if "reached its cap" in r.getMessage()]
    assert len(rotations) >= 3  # 40 records of the samples are well over 8 KiB: it rotated on most ships
    # Nothing vanishes unaccounted: on disk plus dropped is every dead letter, and each drop was logged once.
    assert lines(dead) + lines(predecessor(dead)) + snapshot.dead_letters_dropped == total
    assert sum(dropped_in("\n".join(rotations))) == snapshot.dead_letters_dropped > 0
    assert f"logtail_dead_letters_dropped_total {snapshot.dead_letters_dropped}\n" in prometheus_text(snapshot)
    # Whole lines only: every line of both files is one JSON record.
    for path in (dead, predecessor(dead)):
        assert all(orjson.loads(line)["reason"] == "schema not accepted" for line in path.read_bytes().splitlines())


def test_a_line_longer_than_the_cap_is_kept_whole(corpus: list[Event], tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    big = [corpus[0]]
    big[0].body = "x" * (2 * CAP)
    with StubBackend(refuse_all) as backend:
        sink = build_sink(
            make_config(tmp_path, endpoint=backend.endpoint, dead_letter_max_bytes=CAP),
            self_metrics=SelfMetrics(),
            stop=threading.Event(),
            dead_letter_path=dead,
        )
        sink.ship(corpus[1:3])
        sink.ship(big)
        sink.close()
    assert lines(predecessor(dead)) == 2
    (letter,) = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert letter["body"] == "x" * (2 * CAP)


def cap_flag() -> tuple[str, str]:
    return "--set", f"export.dead_letter_max_bytes={CAP}"


def write_records(logs: Path, n: int, tag: str) -> None:
    with (logs / "error-2025-11-24.log").open("ab") as out:
        out.write(b"".join(record("error", f"{tag}-{i} {'p' * 200}") for i in range(n)))


def test_replay_honours_the_cap(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_records(logs, 300, "r")
    state = tmp_path / "state" / "replay.json"
    with StubBackend(refuse_all) as backend:
        done = subprocess.run(
            [LOGTAIL, "replay", str(logs), "--endpoint", backend.endpoint, "--state", str(state), *cap_flag()],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    dead = state.with_name("replay-dead-letters.jsonl")
    assert dead.stat().st_size <= CAP and predecessor(dead).stat().st_size <= CAP
    assert "300 refused records" in done.stdout
    dropped = sum(dropped_in(done.stderr))
    assert lines(dead) + lines(predecessor(dead)) + dropped == 300 and dropped > 0


def healthz(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        document: dict[str, Any] = orjson.loads(answer.read())
    return document


def test_the_service_honours_the_cap_and_reports_drops_in_healthz(tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    port = free_port()
    written = 0
    with StubBackend(refuse_all) as backend:
        process = start(
            logs,
            state,
            "--endpoint",
            backend.endpoint,
            "--start-at",
            "beginning",
            *cap_flag(),
            "--set",
            f"self.health_address=127.0.0.1:{port}",
        )
        for round_ in range(6):
            write_records(logs, 50, f"s{round_}")
            written += 50
            time.sleep(0.3)
        deadline = time.monotonic() + 60
        document: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                document = healthz(port)
            except OSError:
                document = {}
            if document.get("dead_letters") == written:
                break
            time.sleep(0.2)
        code, err, _ = stop(process)
    assert code == 0, err
    assert document["dead_letters"] == written and document["status"] == "degraded"
    dead = state / "dead-letter.jsonl"
    assert dead.stat().st_size <= CAP and predecessor(dead).stat().st_size <= CAP
    assert document["dead_letters_dropped"] == sum(dropped_in(err)) > 0
    assert lines(dead) + lines(predecessor(dead)) + document["dead_letters_dropped"] == written
