"""`logtail stats`: its numbers equal totals computed straight from the samples' ground truth (expected.jsonl)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from logtail.commands.demo import CORPORA
from logtail.commands.sparkline import sparkline
from tests.test_replay import expected_events

LOGTAIL = str(Path(sys.executable).with_name("logtail"))
USAGE_CALLS = ("spendTokens.usage", "spendStructuredTokens.usage")
RECORD_CALLS = ("spendTokens.record", "spendStructuredTokens.record")
LAST_IP = re.compile(r"\[Request-IP: ([^\]]+)\]$")


def stats(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LOGTAIL, "stats", *map(str, args)], capture_output=True, text=True, check=False, timeout=120)


def calls(samples: Path, *corpora: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for corpus in corpora
        for line in (samples / corpus / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def ground_truth(samples: Path, *corpora: str) -> dict[str, Any]:
    """Totals from the logger calls themselves, without logtail's parsers."""
    output = input_ = 0
    credits = 0.0
    bans: Counter[str] = Counter()
    failures_by_ip: Counter[str] = Counter()
    failures = 0
    for call in calls(samples, *corpora):
        site, meta = call["call_site"], call["meta"]
        if site in USAGE_CALLS:
            output += meta[0]["completionTokens"]
            prompt = meta[0]["promptTokens"]
            input_ += prompt if isinstance(prompt, int) else prompt["input"]
        elif site in RECORD_CALLS:
            credits += meta[0].get("prompt", 0) + meta[0].get("completion", 0)  # v0.8.1 logs a `prompt: undefined`
        elif site == "ban":
            bans[call.get("ip", "(unknown)")] += 1
        elif site == "login.failure":
            failures += 1
            failures_by_ip[LAST_IP.findall(call["message"])[-1]] += 1
        elif site == "login.failure.detail":
            failures += 1
    return {
        "output": output,
        "input": input_,
        "credits": credits,
        "bans": bans,
        "failures": failures,
        "failures_by_ip": failures_by_ip,
    }


@pytest.mark.parametrize("corpora", [*((corpus,) for corpus in CORPORA), CORPORA])
def test_json_totals_equal_the_ground_truth(samples: Path, corpora: tuple[str, ...]) -> None:
    done = stats(*(samples / corpus for corpus in corpora), "--json")
    assert done.returncode == 0 and done.stderr == ""
    doc = orjson.loads(done.stdout)
    truth = ground_truth(samples, *corpora)

    by_model = doc["tokens"]["by_model"]
    assert sum(m["output"] for m in by_model.values()) == truth["output"]
    assert sum(m["input"] for m in by_model.values()) == truth["input"]
    assert sum(m["requests"] for m in by_model.values()) == sum(
        c["call_site"] in USAGE_CALLS for c in calls(samples, *corpora)
    )
    assert sum(doc["tokens"]["by_day"].values()) == doc["tokens"]["total"]
    assert sum(u["tokens"] for u in doc["users"]) + doc["tokens_without_user"] == doc["tokens"]["total"]
    assert sum(u["credits"] for u in doc["users"]) == pytest.approx(truth["credits"])  # transactions name the user
    assert doc["credits"]["total"] == pytest.approx(truth["credits"])
    assert sum(doc["credits"]["by_day"].values()) == pytest.approx(truth["credits"])
    assert doc["bans"]["total"] == sum(truth["bans"].values())
    assert doc["bans"]["addresses"] == dict(truth["bans"])
    failures = doc["login_failures"]
    assert failures["total"] == truth["failures"]
    assert failures["by_address"] == dict(truth["failures_by_ip"])
    assert failures["without_address"] == truth["failures"] - truth["failures_by_ip"].total()


def test_per_model_and_per_source_numbers_match_the_shipped_events(samples: Path) -> None:
    """Tokens per model need the correlator: compare with the events a replay ships (twins left out)."""
    doc = orjson.loads(stats(*(samples / c for c in CORPORA), "--json").stdout)
    events = expected_events(*(samples / c for c in CORPORA))
    output: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    types: Counter[tuple[str, str]] = Counter()
    for e in events:
        a = e.attributes
        if e.event_name == "librechat.token.usage":
            output[str(a.get("gen_ai.request.model", "(unknown)"))] += a["gen_ai.usage.output_tokens"]  # type: ignore[assignment,operator]
        if "librechat.error.source" in a:
            sources[str(a["librechat.error.source"])] += 1
            types[str(a["librechat.error.source"]), str(a.get("exception.type", "(unknown)"))] += 1
    assert {m: t["output"] for m, t in doc["tokens"]["by_model"].items()} == dict(output)
    assert {s: e["count"] for s, e in doc["errors"]["by_source"].items()} == dict(sources)
    for source, entry in doc["errors"]["by_source"].items():
        for etype, n in entry["exception_types"].items():
            assert types[source, etype] == n
    assert doc["records"] - doc["twins"] == len(events)


def test_text_report_shows_the_same_numbers_with_sparklines(samples: Path) -> None:
    paths = [samples / c for c in CORPORA]
    done = stats(*paths)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    doc = orjson.loads(stats(*paths, "--json").stdout)
    truth = ground_truth(samples, *CORPORA)
    assert f"Credits by model ({truth['credits']:,.2f} in all)" in out
    assert f"Bans ({sum(truth['bans'].values()):,} in all" in out
    assert f"Login failures by address ({truth['failures']:,} in all" in out
    for model, t in doc["tokens"]["by_model"].items():
        row = re.search(rf"^  {re.escape(model)} +{t['requests']:,} +{t['input']:,} +{t['output']:,} .*$", out, re.M)
        assert row, model
        assert row[0].endswith(sparkline(list(t["by_day"].values())))
    for day in doc["days"]:
        assert re.search(rf"^  {day} +{doc['tokens']['by_day'][day]:,} ", out, re.M), day
    for source, e in doc["errors"]["by_source"].items():
        assert re.search(rf"^  {source} +{e['count']:,} ", out, re.M), source
    top_ip, top_n = truth["failures_by_ip"].most_common(1)[0]
    assert re.search(rf"^  {re.escape(top_ip)} +{top_n:,}$", out, re.M)


def test_an_unreadable_path_is_one_line_and_exit_2_while_the_others_are_counted(samples: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    done = stats(missing, samples / "v0.8", "--json")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"logtail stats: {missing}: no such file or directory"]
    assert orjson.loads(done.stdout) == orjson.loads(stats(samples / "v0.8", "--json").stdout)


def test_a_damaged_archive_counts_what_was_read(samples: Path, tmp_path: Path) -> None:
    source = samples / "v0.8" / "logs" / "debug-2025-11-24.log.gz"
    damaged = tmp_path / source.name
    data = source.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    done = stats(damaged, "--json")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and str(damaged) in done.stderr
    parsed = subprocess.run([LOGTAIL, "parse", str(damaged)], capture_output=True, check=False, timeout=60)
    assert orjson.loads(done.stdout)["records"] == len(parsed.stdout.splitlines()) > 0


def test_sparkline_scales_to_the_largest_value_and_marks_empty_days() -> None:
    assert sparkline([0, 1, 4, 7]) == "·▂▅█"
    assert sparkline([0, 0]) == "··"
    assert sparkline([]) == ""
    assert sparkline([-5.0, 5.0]) == "██"  # credits are negative when spent: the size counts


def test_a_directory_without_logs_reports_zeros(tmp_path: Path) -> None:
    done = stats(tmp_path, "--json")
    assert (done.returncode, done.stderr) == (0, "")
    doc = orjson.loads(done.stdout)
    assert (doc["records"], doc["tokens"]["total"], doc["errors"]["total"], doc["days"]) == (0, 0, 0, [])
    text = stats(tmp_path).stdout
    assert "Bans (0 in all)" in text and "no dated records" in text
