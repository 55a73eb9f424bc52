"""Shared fixtures: a real OTLP collector on free loopback ports and the bundled sample corpora."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logtail.devcollector.collector import DevCollector

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "fixtures" / "librechat"


def pytest_configure(config: pytest.Config) -> None:
    """An extension built before its source was changed would be tested in its place: refuse to start."""
    stale = [
        str(source.relative_to(ROOT))
        for package in ("logtail", "parsers")
        for built in (ROOT / package).rglob("*.so")
        if (source := built.with_name(built.name.split(".", 1)[0] + ".py")).exists()
        and source.stat().st_mtime > built.stat().st_mtime
    ]
    if stale:
        raise pytest.UsageError(f"compiled before their last change: {', '.join(stale)}; run `make lint` to rebuild")


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
