"""Shared fixtures: a real OTLP collector on free loopback ports and the bundled sample corpora."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logtail.devcollector.collector import DevCollector

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "fixtures" / "librechat"


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[DevCollector]:
    """A fresh rotel collector per test; `collector.logs()` / `.metrics()` show what arrived."""
    with DevCollector(workdir=tmp_path / "collector") as running:
        yield running


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A logs directory (made) and a state directory (not made) for one test."""
    logs, state = tmp_path / "logs", tmp_path / "state"
    logs.mkdir()
    return logs, state
