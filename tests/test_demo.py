"""`make demo` (`python -m logtail.commands.demo`) end to end: the sample logs all reach the embedded collector."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from logtail.commands.demo import CORPORA
from tests.test_replay import expected_calls, expected_events


def test_demo_prints_what_the_collector_received(samples: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "logtail.commands.demo"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    calls = expected_calls(*(samples / corpus for corpus in CORPORA))
    assert f"{calls:,} sent, {calls:,} received, {calls:,} distinct" in out
    assert out.rstrip().endswith("OK: every record arrived exactly once.")
    events = expected_events(*(samples / corpus for corpus in CORPORA))
    for name, n in Counter(e.event_name for e in events).items():
        assert re.search(rf"^  {re.escape(name)} +{n:,}$", out, re.MULTILINE), name
    tokens: Counter[str] = Counter()
    for e in events:
        if e.event_name == "librechat.token.usage" and "gen_ai.usage.output_tokens" in e.attributes:
            tokens[str(e.attributes.get("gen_ai.request.model", "(no model in the logs)"))] += int(
                e.attributes["gen_ai.usage.output_tokens"]  # type: ignore[arg-type]
            )
    assert len(tokens) > 3
    for model, total in tokens.items():
        # Both columns, from the log records and from the librechat.tokens metric, hold the sample's total.
        assert re.search(rf"^  {re.escape(model)} +{total:,} +{total:,}$", out, re.MULTILINE), model
    assert len(out.splitlines()) < 40  # short enough to read at a glance
