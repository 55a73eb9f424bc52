"""Small unicode sparklines for terminal tables: one character per value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

BARS: Final = "▁▂▃▄▅▆▇█"
NOTHING: Final = "·"


def sparkline(values: Sequence[float]) -> str:
    """One bar per value, scaled to the largest; `·` marks nothing at all (zero), so a quiet day shows as a gap."""
    top = max((abs(v) for v in values), default=0)
    if not top:
        return NOTHING * len(values)
    return "".join(NOTHING if not v else BARS[round(abs(v) / top * (len(BARS) - 1))] for v in values)
