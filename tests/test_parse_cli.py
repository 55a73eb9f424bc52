"""`logtail parse PATH...` as events.md §6 defines it."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

LOGTAIL = str(Path(sys.executable).with_name("logtail"))
KEYS = {"time", "severity_text", "severity_number", "event_name", "body", "attributes", "file", "line"}


def run(*args: str | Path) -> tuple[int, list[dict[str, Any]], str]:
    done = subprocess.run([LOGTAIL, "parse", *map(str, args)], capture_output=True, check=False)
    return done.returncode, [orjson.loads(line) for line in done.stdout.splitlines()], done.stderr.decode()


def test_one_json_object_per_record_in_file_order(samples: Path) -> None:
    code, events, err = run(samples / "v0.8" / "logs")
    assert code == 0 and err == ""
    assert all(set(e) == KEYS for e in events)
    files: list[str] = []
    for event in events:
        if not files or files[-1] != event["file"]:
            assert event["file"] not in files, "a file's records are not contiguous"
            files.append(event["file"])
    assert Path(files[0]).name == "debug-2025-11-24.log.gz" and Path(files[-1]).name == "meiliSync-2025-11-25.log"
    for name in files:
        lines = [e["line"] for e in events if e["file"] == name]
        assert lines == sorted(lines) and lines[0] == 1


def test_a_single_gz_file_as_given(samples: Path) -> None:
    path = samples / "v0.8" / "logs" / "error-2025-11-24.log.2.gz"
    code, events, _ = run(path)
    with gzip.open(path) as stream:
        assert len(events) == len(stream.read().splitlines())
    assert code == 0 and {e["file"] for e in events} == {str(path)}
    assert events[0]["time"].endswith("Z") and len(events[0]["time"]) == 24


def test_unreadable_path_is_reported_and_the_others_still_parsed(samples: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.log"
    code, events, err = run(missing, samples / "v0.7" / "login-logs.log")
    assert code == 2
    assert len(events) == 52
    (line,) = err.splitlines()
    assert str(missing) in line


def test_damaged_gz_keeps_what_was_read_and_names_the_file(samples: Path, tmp_path: Path) -> None:
    source = (samples / "v0.8" / "logs" / "debug-2025-11-24.log.gz").read_bytes()
    broken = tmp_path / "debug-2025-11-24.log.gz"
    broken.write_bytes(source[: len(source) // 2])
    good = samples / "v0.8" / "logs" / "meiliSync-2025-11-25.log"
    code, events, err = run(broken, good)
    assert code == 2
    assert str(broken) in err and len(err.splitlines()) == 1
    assert {Path(e["file"]).name for e in events} == {broken.name, good.name}


def test_bad_input_is_unparsed_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "error-2025-11-24.log"
    huge = b'{"level":"error","message":"' + b"A" * (1 << 20) + b'"}\n'
    path.write_bytes(
        b'{"level":"error","message":"ok \xff bytes","timestamp":"2025-11-24T23:00:00.000Z"}\n'
        + huge
        + b'{"level":"error","message":"fine","timestamp":"2025-11-24T23:00:01.000Z"}\n'
        + b"{broken json\n"
    )
    code, events, err = run(path)
    assert code == 0 and err == ""
    assert [e["event_name"] for e in events] == [
        "librechat.unparsed",
        "librechat.unparsed",
        "librechat.error",
        "librechat.unparsed",
    ]
    assert [e["line"] for e in events] == [1, 2, 3, 4]
    assert "\ufffd" in events[0]["body"] and "UTF-8" in events[0]["attributes"]["logtail.parse_error"]
    assert events[1]["attributes"]["logtail.truncated"] is True and len(events[1]["body"]) <= 1 << 20
    assert events[3]["body"] == "{broken json\n"
    # Undated file and undated record: the previous record's time.
    assert events[3]["time"] == "2025-11-24T23:00:01.000Z"


def test_email_policy_option(samples: Path) -> None:
    login = samples / "v0.7" / "login-logs.log"
    _, kept, _ = run(login, "--email-policy", "keep")
    _, hashed, _ = run(login, "--email-policy", "hash")
    assert kept[1]["attributes"]["user.email"] == "unknown114@mailinator.example"
    assert str(hashed[1]["attributes"]["user.email"]).startswith("sha256:")
    assert "unknown114" not in orjson.dumps(hashed).decode()
    done = subprocess.run([LOGTAIL, "parse", str(login), "--email-policy", "shout"], capture_output=True, check=False)
    assert done.returncode == 2 and b"email-policy" in done.stderr
