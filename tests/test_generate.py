"""The log generator of the benchmark: LibreChat-format files that `logtail parse` reads as the samples' mix."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from fixtures.generate import generate, parse_size

LOGTAIL = str(Path(sys.executable).with_name("logtail"))
ROOT = Path(__file__).resolve().parent.parent


def parsed(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run([LOGTAIL, "parse", str(path)], capture_output=True, check=True)
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def mix(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((e["event_name"], e["severity_text"]) for e in events)


@pytest.mark.parametrize("corpus", ["v0.7", "v0.8"])
def test_cycles_scale_the_sample_mix_exactly(tmp_path: Path, samples: Path, corpus: str) -> None:
    written = generate(tmp_path, corpus=corpus, cycles=3, max_size=parse_size("64KiB"), gzip=True)
    events = parsed(tmp_path)
    sample = mix(parsed(samples / corpus))
    assert len(events) == written.records == 3 * sample.total()
    assert written.twins == sum(e["attributes"].get("logtail.twin", False) for e in events) > 0
    assert mix(events) == Counter({key: 3 * n for key, n in sample.items()})
    assert not any(e["event_name"] == "librechat.unparsed" for e in events)
    if corpus == "v0.7":
        assert (tmp_path / "login-logs.log").exists()


def test_rotation_follows_librechat_names_and_time_moves_forward(tmp_path: Path) -> None:
    generate(tmp_path, families=["error"], records=3000, max_size=parse_size("200KiB"), gzip=True)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "error-2025-11-25.log.1.gz" in names and all(n.startswith("error-2025-") for n in names)
    assert sum(not n.endswith(".gz") for n in names) == 1, "only the current file stays plain"
    with gzip.open(tmp_path / "error-2025-11-25.log.1.gz") as stream:
        assert len(stream.read()) >= parse_size("200KiB")
    events = parsed(tmp_path)
    assert len(events) == 3000 and {e["event_name"] for e in events} >= {"librechat.error", "librechat.violation"}
    times = [e["time"] for e in events]
    assert times == sorted(times) and times[0][:10] == "2025-11-24" and times[-1][:10] == "2025-11-25"


def test_ids_are_fresh_per_cycle_and_consistent_within_a_request(tmp_path: Path) -> None:
    generate(tmp_path, families=["debug"], cycles=2)
    usage = [e for e in parsed(tmp_path) if e["event_name"] == "librechat.token.usage"]
    half = len(usage) // 2
    conversations = [e["attributes"]["gen_ai.conversation.id"] for e in usage]
    assert not set(conversations[:half]) & set(conversations[half:])
    # Correlation still joins usage to the model named by the balance check of the same request.
    assert sum("gen_ai.request.model" in e["attributes"] for e in usage) > 0.9 * len(usage)


def test_same_seed_same_bytes_and_size_is_reached(tmp_path: Path) -> None:
    size = parse_size("300KB")
    for run in ("a", "b"):
        written = generate(tmp_path / run, size=size, seed=7).bytes
        assert size <= written < size + 64 * 1024
    generate(tmp_path / "c", size=size, seed=8)
    a, b, c = (sorted((tmp_path / run).iterdir()) for run in "abc")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_command_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "fixtures" / "generate.py"), "--out", str(tmp_path), "--records", "500"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("wrote 500 records")
    assert len(parsed(tmp_path)) == 500
    bad = subprocess.run(
        [sys.executable, "-m", "fixtures.generate", "--out", str(tmp_path), "--size", "1MB", "--families", "audit"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert bad.returncode == 2 and "unknown families: audit" in bad.stderr
