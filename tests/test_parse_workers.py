"""Parse workers: the same events in the same order as parsing in place, the same errors, no leftover process."""

from __future__ import annotations

import gc
import gzip
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from fixtures.generate import generate
from logtail.export.encode import LogEncoder
from logtail.pipeline import TWIN, Scrub
from logtail.source import parse_workers
from logtail.source.files import discover
from logtail.source.parse_workers import BATCH, PARALLEL_MIN_BYTES, ParseWorkers, WorkerFailed
from logtail.source.read import read_events
from parsers.event import Event
from parsers.records import DEFAULT_MAX_RECORD

ENCODER = LogEncoder({"service.name": "librechat"}, "test")
CONTAINERS = Path(__file__).resolve().parent.parent / "fixtures" / "containers" / "json"


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("large")
    generate(out, families=["debug"], size=3 * PARALLEL_MIN_BYTES, max_size=1 << 30)
    path = max(out.glob("debug-*.log"), key=lambda p: p.stat().st_size)
    assert path.stat().st_size >= PARALLEL_MIN_BYTES
    return path


@pytest.fixture(scope="module")
def workers() -> Iterator[ParseWorkers]:
    with ParseWorkers(2, scrub=Scrub(), encode=ENCODER.record) as pool:
        yield pool


def in_place(path: Path, start: int = 0) -> list[Event]:
    return Scrub()(list(read_events(discover([path])[0], start=start)))


def dealt(pool: ParseWorkers, path: Path, start: int = 0) -> list[Event]:
    return [e for batch in pool.batches(discover([path])[0], max_record=DEFAULT_MAX_RECORD, start=start) for e in batch]


def test_same_events_as_parsing_in_place_and_encoded_alike(workers: ParseWorkers, large: Path) -> None:
    got = dealt(workers, large)
    assert got == in_place(large)
    # Twins are not shipped unless they are the only copy: only the others are encoded ahead.
    assert all((e.wire is None) == (TWIN in e.attributes) for e in got)
    # The LogRecords encoded in the workers frame into the same request as encoding them here.
    assert _records(ENCODER.protobuf(got, 1)) == _records(ENCODER.protobuf([Event(*_fields(e)) for e in got], 1))
    resumed = got[len(got) // 2].start
    assert dealt(workers, large, resumed) == in_place(large, resumed)


def _fields(event: Event) -> tuple[object, ...]:
    """The event with its wire bytes dropped, observed at the same time as the workers' encoding."""
    return (*(getattr(event, f) for f in Event.__dataclass_fields__ if f != "wire"),)


def _records(body: bytes) -> list[LogRecord]:
    request = ExportLogsServiceRequest.FromString(body)
    records = list(request.resource_logs[0].scope_logs[0].log_records)
    for record in records:
        # Attributes remembered by an encoder come after the others: their order depends on what it saw before.
        ordered = sorted(record.attributes, key=lambda kv: kv.key)
        del record.attributes[:]
        record.attributes.extend(ordered)
        record.observed_time_unix_nano = 0
    return records


def test_records_without_time_take_the_time_of_the_batch_before(workers: ParseWorkers, tmp_path: Path) -> None:
    # v0.7 error lines carry no timestamp: each takes the time of the record before it, across batch ends too.
    lines = []
    for i in range(3 * BATCH):
        record = {"level": "error", "message": f"failure {i} " + "x" * 200}
        if i % (BATCH + 300) == 0:
            record["timestamp"] = f"2025-11-24T10:{i // 1000:02d}:00.000Z"
        lines.append(orjson.dumps(record) + b"\n")
    path = tmp_path / "error-2025-11-24.log"
    path.write_bytes(b"".join(lines))
    assert path.stat().st_size >= PARALLEL_MIN_BYTES
    got = dealt(workers, path)
    assert [(e.time_unix_nano, e.attributes) for e in got] == [(e.time_unix_nano, e.attributes) for e in in_place(path)]
    # The second batch starts untimed: its first records take the first record's time (not the file's date)
    # and are encoded again with it.
    assert got[BATCH].time_unix_nano == got[0].time_unix_nano != discover([path])[0].date_ns
    assert got[BATCH].wire is None and got[BATCH - 1].wire is not None


def test_a_damaged_archive_gives_the_records_before_the_damage_then_the_error(
    workers: ParseWorkers, large: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = gzip.compress(large.read_bytes())
    damaged = tmp_path / "debug-2025-11-24.log.gz"
    damaged.write_bytes(packed[: len(packed) // 2])
    # A cut archive's trailer holds no size: dealt out all the same, as a whole one of that size would be.
    monkeypatch.setattr(parse_workers, "large", lambda _file: True)
    got: list[Event] = []
    with pytest.raises(EOFError):
        for batch in workers.batches(discover([damaged])[0], max_record=DEFAULT_MAX_RECORD):
            got.extend(batch)
    whole = in_place(large)
    assert 0 < len(got) < len(whole)
    assert [(e.body, e.line, e.end) for e in got] == [(e.body, e.line, e.end) for e in whole[: len(got)]]


def test_stopping_early_leaves_the_workers_ready_for_the_next_file(workers: ParseWorkers, large: Path) -> None:
    batches = workers.batches(discover([large])[0], max_record=DEFAULT_MAX_RECORD)
    assert next(batches)[0].line == 1
    batches.close()  # type: ignore[attr-defined]
    assert dealt(workers, large) == in_place(large)


def test_closing_leaves_no_worker_and_gives_the_heap_back_to_the_collector(large: Path) -> None:
    before = set(multiprocessing.active_children())
    frozen = gc.get_freeze_count()
    with ParseWorkers(3) as pool:  # this process and two workers
        assert len(set(multiprocessing.active_children()) - before) == 2
        # While the workers share this process's pages, its collector leaves the objects of before the fork be.
        assert gc.get_freeze_count() > frozen
        assert dealt(pool, large) == list(read_events(discover([large])[0]))
    assert set(multiprocessing.active_children()) == before
    assert gc.get_freeze_count() == 0


def test_one_job_parses_in_place(large: Path) -> None:
    before = set(multiprocessing.active_children())
    with ParseWorkers(1, scrub=Scrub()) as pool:
        assert set(multiprocessing.active_children()) == before
        assert dealt(pool, large) == in_place(large)


def test_this_process_parses_the_next_batch_rather_than_wait_for_a_worker(large: Path) -> None:
    main = os.getpid()

    def tagged(_event: Event, _now: int) -> bytes:
        if os.getpid() == main:
            return b"here"
        time.sleep(0.001)  # a worker slower than this process: its answer is never ready at once
        return b"worker"

    with ParseWorkers(2, encode=tagged) as pool:
        got = dealt(pool, large)
    assert [_fields(e) for e in got] == [_fields(e) for e in read_events(discover([large])[0])]
    made_by = {e.wire[0] for e in got if e.wire is not None}
    assert made_by == {b"here", b"worker"}


def test_a_failing_worker_is_named_in_the_main_process(large: Path) -> None:
    def broken(_event: Event, _now: int) -> bytes:
        raise RuntimeError("encoder bug")

    with ParseWorkers(2, encode=broken) as pool, pytest.raises(WorkerFailed, match="RuntimeError: encoder bug"):
        dealt(pool, large)


@pytest.mark.parametrize("runtime", ["docker", "pods"])
def test_container_records_keep_the_runtime_time_and_stream(
    workers: ParseWorkers, runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse_workers, "large", lambda _file: True)  # deal every file
    files = discover([CONTAINERS / runtime])
    assert files and all(f.family in ("docker", "cri") for f in files)
    for log_file in files:
        got = [e for batch in workers.batches(log_file, max_record=DEFAULT_MAX_RECORD) for e in batch]
        assert got == Scrub()(list(read_events(log_file)))
        assert got and all(e.observed_unix_nano and "log.iostream" in e.attributes for e in got)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie has exited; reaping it is its new parent's business


def test_the_workers_exit_when_the_main_process_is_killed() -> None:
    script = (
        "import sys\n"
        "from logtail.source.parse_workers import ParseWorkers\n"
        "pool = ParseWorkers(3)\n"
        "print(*(worker.pid for worker, _ in pool._workers), flush=True)\n"
        "sys.stdin.read()\n"
    )
    main = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert main.stdout is not None
    workers = [int(pid) for pid in main.stdout.readline().split()]
    assert len(workers) == 2 and not any(_gone(pid) for pid in workers)
    main.kill()  # SIGKILL: no atexit, no daemon-process cleanup
    main.wait()
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in workers)
