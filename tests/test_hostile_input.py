"""Hostile input: regex-backtracking text, huge lines, NUL bytes, invalid UTF-8, endless records, symlink loops,
files replaced by directories, unreadable files and damaged archives. Each gives a clear report, never a crash,
never the loss of another record, never a busy loop (pytest-timeout bounds every case)."""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import subprocess
import time
import zlib
from pathlib import Path

import orjson
import pytest
from test_outage import MB, tree_rss
from test_parse_cli import LOGTAIL, run
from test_security import run_service, stop_service

from logtail.commands.parse import write_events
from logtail.devcollector.collector import DevCollector
from logtail.pipeline import Pipeline, PrivacySettings
from logtail.source.checkpoint import state_path
from logtail.source.files import discover
from parsers import UNPARSED_BODY_CAP, FileContext, parse_record
from parsers.records import Record

HEADER = "2025-11-24T23:25:00.000Z warn: "
# Text shapes that made a redaction pattern backtrack quadratically; 200 KB of each took minutes to hours.
BACKTRACKING = ["a-", "a.", "password-", "eyJa.", "x-api-key-token_a.b:"]


def debug_event_text(body: str, policy: str = "mask") -> str:
    ctx = FileContext(family="debug", path="/l/debug.log", name="debug.log", identity="i")
    data = (HEADER + body + "\n").encode()
    (event,) = Pipeline(PrivacySettings.model_validate({"email": policy})).process(
        [parse_record(Record(data, 0, len(data), 1), ctx)]
    )
    return event.body


@pytest.mark.timeout(10)
@pytest.mark.parametrize("unit", BACKTRACKING)
def test_redaction_is_linear_on_backtracking_shapes(unit: str) -> None:
    body = unit * (200_000 // len(unit))
    assert debug_event_text(body, "keep") == body
    secret = f"{body} password: hunter2hunter2 {body}"
    assert "hunter2" not in debug_event_text(secret, "keep")


@pytest.mark.timeout(3)
def test_email_policy_is_linear_on_a_long_word_before_an_at_sign() -> None:
    body = "a" * 200_000 + "@"
    assert debug_event_text(body) == body


@pytest.mark.timeout(10)
@pytest.mark.parametrize("prefix", ["[indexSync] ", "[syncWithMeili] ", "[mongoMeili] "])
def test_search_sync_phases_are_linear_on_a_long_word(prefix: str) -> None:
    # A phase pattern opening with `\w+` tried at every character of a word run backtracks quadratically: 30 KB
    # took 7 s, 200 KB would take minutes.
    body = prefix + "x" * 200_000
    assert debug_event_text(body, "keep") == body


# Hostile files through `logtail parse`: a clear report, no crash, no other record lost, no busy loop.

GOOD_JSON = b'{"level":"error","message":"[x] good %d","timestamp":"2025-11-24T23:00:0%d.000Z"}\n'
GOOD_DEBUG = b"2025-11-24T23:00:0%d.000Z info: good %d\n"


@pytest.mark.timeout(60)
def test_ten_megabyte_lines_are_cut_at_the_cap_and_flagged_others_intact(tmp_path: Path) -> None:
    huge = b"x" * (10 << 20)
    error = tmp_path / "error-2025-11-24.log"
    error.write_bytes(GOOD_JSON % (1, 1) + b'{"level":"error","message":"' + huge + b'"}\n' + GOOD_JSON % (2, 2))
    debug = tmp_path / "debug-2025-11-24.log"
    debug.write_bytes(GOOD_DEBUG % (1, 1) + b"2025-11-24T23:00:01.500Z debug: " + huge + b"\n" + GOOD_DEBUG % (2, 2))
    code, events, err = run(tmp_path)
    assert (code, err) == (0, "")
    for family in ("debug", "error"):
        mine = [e for e in events if e["attributes"]["logtail.file.family"] == family]
        assert [e["line"] for e in mine] == [1, 2, 3]
        assert [e["body"] for e in mine[::2]] == (
            ["good 1", "good 2"] if family == "debug" else ["[x] good 1", "[x] good 2"]
        )
        cut = mine[1]
        assert cut["event_name"] == "librechat.unparsed" and cut["attributes"]["logtail.truncated"] is True
        assert "longer than" in cut["attributes"]["logtail.parse_error"] and 0 < len(cut["body"]) <= UNPARSED_BODY_CAP


@pytest.mark.timeout(60)
def test_nul_bytes_and_invalid_utf8_cost_only_their_own_record(tmp_path: Path) -> None:
    error = tmp_path / "error-2025-11-24.log"
    error.write_bytes(
        GOOD_JSON % (1, 1)
        + b"\x00" * 5000
        + b"\n"
        + b'{"level":"error","message":"bad \xc3\x28 \xff"}\n'
        + GOOD_JSON % (2, 2)
    )
    debug = tmp_path / "debug-2025-11-24.log"
    debug.write_bytes(
        GOOD_DEBUG % (1, 1)
        + b"2025-11-24T23:00:01.100Z warn: nul \x00 inside\n"
        + b"2025-11-24T23:00:01.200Z warn: \xed\xa0\x80 surrogate\n"
        + b"\x00\x00\x00\n"  # a continuation line of the record above
        + GOOD_DEBUG % (2, 2)
    )
    code, events, err = run(tmp_path)
    assert (code, err) == (0, "")
    debug_events = [e for e in events if e["file"] == str(debug)]
    assert [e["line"] for e in debug_events] == [1, 2, 3, 5]
    assert debug_events[1]["body"] == "nul \x00 inside" and debug_events[1]["event_name"] == "librechat.log"
    assert "UTF-8" in debug_events[2]["attributes"]["logtail.parse_error"]
    error_events = [e for e in events if e["file"] == str(error)]
    assert [e["event_name"] for e in error_events] == [
        "librechat.error",
        *["librechat.unparsed"] * 2,
        "librechat.error",
    ]
    assert error_events[1]["body"] == "\x00" * 5000 + "\n"
    assert [e["body"] for e in events if "good" in e["body"]] == ["good 1", "good 2", "[x] good 1", "[x] good 2"]


@pytest.mark.timeout(60)
def test_a_debug_record_that_never_ends(tmp_path: Path) -> None:
    debug = tmp_path / "debug-2025-11-24.log"
    endless = b"".join(b"    continuation line %07d of a record with no next header\n" % n for n in range(60_000))
    debug.write_bytes(GOOD_DEBUG % (1, 1) + b"2025-11-24T23:00:02.000Z debug: start\n" + endless + b"no newline")
    code, events, err = run(debug)
    assert (code, err) == (0, "")
    assert [e["line"] for e in events] == [1, 2]
    assert events[0]["body"] == "good 1"
    assert events[1]["attributes"]["logtail.truncated"] is True and events[1]["time"] == "2025-11-24T23:00:02.000Z"


@pytest.mark.timeout(60)
def test_symlink_loops_and_dangling_links_are_reported_the_rest_parsed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "debug-2025-11-24.log").write_bytes(GOOD_DEBUG % (1, 1))
    (logs / "loop").symlink_to(logs)  # a directory loop: not followed
    (logs / "debug-2025-11-25.log").symlink_to("debug-2025-11-25.log")  # a link to itself
    (logs / "error-2025-11-24.log").symlink_to(tmp_path / "rotated-away")  # dangling
    code, events, err = run(logs)
    assert code == 2
    assert [e["body"] for e in events] == ["good 1"]
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("logtail parse: ") for line in lines)
    assert "debug-2025-11-25.log" in err and "error-2025-11-24.log" in err


def test_a_file_replaced_by_a_directory_is_reported_the_rest_written(tmp_path: Path) -> None:
    (tmp_path / "debug-2025-11-24.log").write_bytes(GOOD_DEBUG % (1, 1))
    error = tmp_path / "error-2025-11-24.log"
    error.write_bytes(GOOD_JSON % (1, 1))
    found = discover([tmp_path])
    error.unlink()
    error.mkdir()
    out, err = io.BytesIO(), io.StringIO()
    assert not write_events(found, Pipeline(), out, err)
    assert len(out.getvalue().splitlines()) == 1
    (line,) = err.getvalue().splitlines()
    assert str(error) in line and "directory" in line.lower()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable_file_in_a_directory_is_reported_the_rest_parsed(tmp_path: Path) -> None:
    (tmp_path / "debug-2025-11-24.log").write_bytes(GOOD_DEBUG % (1, 1))
    locked = tmp_path / "error-2025-11-24.log"
    locked.write_bytes(GOOD_JSON % (1, 1))
    locked.chmod(0)
    code, events, err = run(tmp_path)
    assert code == 2 and [e["body"] for e in events] == ["good 1"]
    (line,) = err.splitlines()
    assert str(locked) in line


def corrupt_gzip(data: bytes) -> bytes:
    """`data` gzipped, then damaged the way a disk error does: the inflater itself fails (not only the CRC)."""
    packed = gzip.compress(data)
    for seed in range(1000):
        damaged = bytearray(packed)
        rng = random.Random(seed)
        at = rng.randrange(len(packed) // 4, len(packed) // 2)
        damaged[at : at + 16] = rng.randbytes(16)
        try:
            gzip.decompress(bytes(damaged))
        except zlib.error:
            return bytes(damaged)
        except (OSError, EOFError):
            continue
    raise AssertionError("no damage found that breaks the inflater")


@pytest.mark.timeout(60)
def test_corrupt_gz_keeps_the_records_before_the_damage_with_a_one_line_report(tmp_path: Path) -> None:
    (tmp_path / "debug-2025-11-24.log").write_bytes(GOOD_DEBUG % (1, 1))
    records = b"".join(GOOD_JSON % (n, n % 10) for n in range(20_000))
    damaged = tmp_path / "error-2025-11-24.log.gz"
    damaged.write_bytes(corrupt_gzip(records))
    code, events, err = run(tmp_path)
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"logtail parse: {damaged}: ")
    assert events[0]["body"] == "good 1"
    kept = [e["body"] for e in events[1:]]
    assert kept and kept == [f"[x] good {n}" for n in range(len(kept))]


# The same hostility under the live service: it keeps shipping the good files and does not spin.


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_service_ships_past_loops_directories_huge_and_binary_records_without_spinning(
    collector: DevCollector, dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    logs, state = dirs
    (logs / "loop").symlink_to(logs)  # a directory loop
    (logs / "debug-2025-11-25.log").symlink_to("debug-2025-11-25.log")  # a link to itself
    (logs / "meiliSync-2025-11-24.log").symlink_to(tmp_path / "rotated-away")  # dangling
    (logs / "error-2025-11-23.log").mkdir()  # a directory where a file is expected
    error = logs / "error-2025-11-24.log"
    error.write_bytes(GOOD_JSON % (1, 1) + b'{"level":"error","message":"' + b"y" * (10 << 20) + b'"}\n')
    debug = logs / "debug-2025-11-24.log"
    debug.write_bytes(GOOD_DEBUG % (1, 1) + b"2025-11-24T23:00:01.100Z warn: nul \x00 and \xff\xfe\n")
    process = run_service(logs, state, collector.http_endpoint)
    try:
        rows = collector.wait_for_logs(4, timeout=60)
        error.unlink()  # the live file replaced by a directory, then a new day's file appears
        error.mkdir()
        (logs / "error-2025-11-25.log").write_bytes(GOOD_JSON % (2, 2))
        rows = collector.wait_for_logs(5, timeout=30)
        idle_from = cpu_seconds(process.pid)
        time.sleep(3)
        idle_cpu = cpu_seconds(process.pid) - idle_from
        assert process.poll() is None
    finally:
        err = stop_service(process)
    bodies = sorted(str(r["body"])[:20] for r in rows)
    assert len(rows) == 5, bodies
    assert [b for b in bodies if "good" in b] == ["[x] good 1", "[x] good 2", "good 1"]
    huge = next(r for r in rows if r["attributes"].get("logtail.truncated"))
    assert huge["event_name"] == "librechat.unparsed" and len(str(huge["body"])) <= UNPARSED_BODY_CAP
    assert idle_cpu < 1.0, f"{idle_cpu:.2f} s of CPU in 3 idle seconds: a busy loop"
    assert "Traceback" not in err


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_service_cuts_a_record_that_keeps_growing_and_ships_what_follows(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    """A debug record that grows for seconds past the cap, then an unterminated JSON line doing the same."""
    logs, state = dirs
    debug, error = logs / "debug-2025-11-24.log", logs / "error-2025-11-24.log"
    process = run_service(logs, state, collector.http_endpoint)
    try:
        with debug.open("ab") as out, error.open("ab") as err_out:
            out.write(GOOD_DEBUG % (1, 1) + b"2025-11-24T23:00:01.000Z debug: endless\n")
            err_out.write(b'{"level":"error","message":"')
            for _ in range(30):  # 3 MB into each over 3 s, never a record boundary
                out.write(b"    more of the same record, line after line\n" * 2200)
                err_out.write(b"z" * 100_000)
                out.flush()
                err_out.flush()
                time.sleep(0.1)
            assert tree_rss(process.pid) < 300 * MB
            out.write(GOOD_DEBUG % (2, 2))
            err_out.write(b'"}\n' + GOOD_JSON % (1, 1))
        rows = collector.wait_for_logs(5, timeout=60)
        assert process.poll() is None
    finally:
        stop_service(process)
    assert sorted(str(r["body"])[:10] for r in rows if "good" in str(r["body"])) == ["[x] good 1", "good 1", "good 2"]
    cut = [r for r in rows if r["attributes"].get("logtail.truncated")]
    assert len(rows) == 5 and len(cut) == 2, [str(r["body"])[:40] for r in rows]


@pytest.mark.timeout(60)
def test_parse_skips_a_fifo_named_like_a_log_file(tmp_path: Path) -> None:
    (tmp_path / "debug-2025-11-24.log").write_bytes(GOOD_DEBUG % (1, 1))
    os.mkfifo(tmp_path / "error-2025-11-24.log")
    (tmp_path / "meiliSync-2025-11-24.log").write_bytes(b'{"level":"info","message":"good 2"}\n')
    try:
        done = subprocess.run([LOGTAIL, "parse", str(tmp_path)], capture_output=True, timeout=5, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("logtail parse hung on the FIFO")
    assert [orjson.loads(line)["body"] for line in done.stdout.splitlines()] == ["good 1", "good 2"]
    assert done.returncode == 2 and b"error-2025-11-24.log" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_service_ships_past_a_fifo_named_like_a_log_file(collector: DevCollector, dirs: tuple[Path, Path]) -> None:
    logs, state = dirs
    (logs / "debug-2025-11-24.log").write_bytes(GOOD_DEBUG % (1, 1))
    os.mkfifo(logs / "error-2025-11-24.log")
    process = run_service(logs, state, collector.http_endpoint)
    try:
        rows = collector.wait_for_logs(1, timeout=5)
        assert [r["body"] for r in rows] == ["good 1"]
        stop_service(process)
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_more_archives_than_file_descriptors_are_all_shipped(collector: DevCollector, dirs: tuple[Path, Path]) -> None:
    logs, state = dirs
    archives = 1200  # e.g. 14 days of a busy debug log rotated at 20 MB
    for n in range(1, archives + 1):
        (logs / f"debug-2025-11-24.log.{n}.gz").write_bytes(gzip.compress(GOOD_DEBUG % (1, n)))
    process = run_service(logs, state, collector.http_endpoint, limit_files=1024)
    try:
        assert len(collector.wait_for_logs(archives, timeout=10)) == archives
        stop_service(process)
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_service_does_not_follow_a_link_out_of_the_logs_directory(
    collector: DevCollector, dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    logs, state = dirs
    private = tmp_path / "logtail.toml"
    private.write_text('[export]\nendpoint = "https://otlp.example"\n')
    (logs / "debug-2025-11-24.log").symlink_to(private)
    (logs / "error-2025-11-24.log").write_bytes(GOOD_JSON % (1, 1))
    process = run_service(logs, state, collector.http_endpoint)
    try:
        rows = collector.wait_for_logs(1, settle=3.0)
        stop_service(process)
    finally:
        process.kill()
        process.wait()
    assert [r["body"] for r in rows] == ["[x] good 1"]


@pytest.mark.timeout(60)
def test_stats_reports_a_corrupt_gz_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "debug-2025-11-24.log").write_bytes(GOOD_DEBUG % (1, 1))
    damaged = tmp_path / "error-2025-11-24.log.gz"
    damaged.write_bytes(corrupt_gzip(b"".join(GOOD_JSON % (n, n % 10) for n in range(20_000))))
    done = subprocess.run([LOGTAIL, "stats", str(tmp_path)], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert str(damaged) in line


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_service_ships_a_damaged_archive_up_to_the_damage_and_the_other_files(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    records = b"".join(GOOD_JSON % (n, n % 10) for n in range(20_000))
    damaged = logs / "error-2025-11-24.log.1.gz"
    damaged.write_bytes(corrupt_gzip(records))
    readable = len(read_until_damage(damaged).splitlines())
    (logs / "error-2025-11-24.log.2").write_bytes(GOOD_JSON % (20_000, 0))
    (logs / "debug-2025-11-24.log").write_bytes(GOOD_DEBUG % (1, 1))
    process = run_service(logs, state, collector.http_endpoint)
    try:
        rows = collector.wait_for_logs(readable + 2, timeout=60)
        assert process.poll() is None
    finally:
        err = stop_service(process)
    bodies = [str(r["body"]) for r in rows]
    assert "good 1" in bodies and "[x] good 20000" in bodies
    archived = [b for b in bodies if b.startswith("[x] good ") and b != "[x] good 20000"]
    assert archived == [f"[x] good {n}" for n in range(len(archived))] and len(archived) >= readable - 1
    assert str(damaged) in err and "Traceback" not in err


@pytest.mark.timeout(90)
def test_the_service_reports_a_damaged_archive_once_and_again_only_when_it_changes(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    damaged = logs / "error-2025-11-24.log.1.gz"
    damaged.write_bytes(corrupt_gzip(b"".join(GOOD_JSON % (n, n % 10) for n in range(20_000))))
    readable = len(read_until_damage(damaged).splitlines())
    process = run_service(logs, state, collector.http_endpoint)
    try:
        collector.wait_for_logs(readable, timeout=60)
        time.sleep(4.5)  # a rescan every second: four more chances to report it again
        replacement = logs / ".replacement"  # written aside and renamed: it changes once, not while written
        replacement.write_bytes(corrupt_gzip(b"".join(GOOD_JSON % (n, n % 10) for n in range(24_000))))
        replacement.rename(damaged)
        time.sleep(4.5)
    finally:
        err = stop_service(process)
    reports = [line for line in err.splitlines() if str(damaged) in line]
    assert len(reports) == 2, reports


def read_until_damage(path: Path) -> bytes:
    """What a streaming reader gets out of a damaged archive before the inflater fails."""
    out = bytearray()
    with gzip.open(path) as stream:
        try:
            while chunk := stream.read1(1 << 16):
                out += chunk
        except (zlib.error, OSError, EOFError):
            pass
    return bytes(out[: out.rfind(b"\n") + 1])


@pytest.mark.parametrize(
    "content",
    [
        b"\x00garbage{",
        b'{"format":"someone-else","version":9}',
        b'{"format":"logtail-checkpoints","version":1,"files":7}',
    ],
    ids=["garbage", "foreign", "wrong-shape"],
)
@pytest.mark.timeout(60)
def test_a_bad_state_file_is_set_aside_and_every_record_shipped(
    content: bytes, collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    """Even with start_at=end: a checkpoint that cannot be trusted means reading from the beginning."""
    logs, state = dirs
    state.mkdir()
    (logs / "debug-2025-11-24.log").write_bytes(GOOD_DEBUG % (1, 1) + GOOD_DEBUG % (2, 2))
    bad = state_path(state, logs)
    bad.write_bytes(content)
    process = subprocess.Popen(
        [LOGTAIL, "run", "--logs-dir", str(logs), "--state-dir", str(state), "--endpoint", collector.http_endpoint],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        rows = collector.wait_for_logs(2, timeout=20)
    finally:
        err = stop_service(process)
    assert [r["body"] for r in rows] == ["good 1", "good 2"]
    (aside,) = state.glob(f"{bad.name}.bad-*")
    assert aside.read_bytes() == content
    assert str(bad) in err and "Traceback" not in err


@pytest.mark.parametrize("depth", [300, 1000, 200_000])
def test_deeply_nested_metadata_costs_only_its_record_and_keeps_its_text(depth: int, tmp_path: Path) -> None:
    """Deeper than orjson writes (255), than Python's repr recurses (1000), than orjson reads (1024)."""
    nested = "[" * depth + "]" * depth
    error = tmp_path / "error-2025-11-24.log"
    error.write_bytes(
        GOOD_JSON % (1, 1) + f'{{"level":"error","message":"x","a":{nested}}}\n'.encode() + GOOD_JSON % (2, 2)
    )
    code, events, err = run(error)
    assert (code, err) == (0, "")
    assert [e["line"] for e in events] == [1, 2, 3]
    assert [e["body"] for e in events[::2]] == ["[x] good 1", "[x] good 2"]
    attrs = events[1]["attributes"]
    kept = events[1]["body"] + str(attrs.get("librechat.meta.a", ""))
    # Kept, or (beyond what a JSON reader takes) salvaged and flagged: never dropped silently.
    assert nested[: min(depth, UNPARSED_BODY_CAP // 4)] in kept or (
        attrs.get("logtail.salvaged") is True and attrs["logtail.parse_error"] == "not a JSON object"
    )


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_logs_directory_removed_and_recreated_under_the_service(
    collector: DevCollector, dirs: tuple[Path, Path]
) -> None:
    logs, state = dirs
    (logs / "debug-2025-11-24.log").write_bytes(GOOD_DEBUG % (1, 1))
    process = run_service(logs, state, collector.http_endpoint)
    try:
        assert len(collector.wait_for_logs(1, timeout=20)) == 1
        shutil.rmtree(logs)
        time.sleep(0.5)
        idle_from = cpu_seconds(process.pid)
        time.sleep(2)
        idle_cpu = cpu_seconds(process.pid) - idle_from
        logs.mkdir()
        (logs / "debug-2025-11-25.log").write_bytes(GOOD_DEBUG % (2, 2))
        rows = collector.wait_for_logs(2, timeout=30)
        assert process.poll() is None
    finally:
        err = stop_service(process)
    assert [r["body"] for r in rows] == ["good 1", "good 2"]
    assert idle_cpu < 1.0, f"{idle_cpu:.2f} s of CPU in 2 s without a logs directory: a busy loop"
    assert "Traceback" not in err
