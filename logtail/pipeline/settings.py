"""Privacy settings (config-time only, so pydantic's validation is affordable here)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EmailPolicy = Literal["keep", "mask", "hash", "drop"]


class PrivacySettings(BaseModel):
    """What happens to e-mail addresses, and which extra patterns are secrets (events.md §5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: EmailPolicy = "mask"
    redact_patterns: tuple[str, ...] = Field(default=(), description="extra regular expressions to replace")

    @field_validator("redact_patterns")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redact pattern {pattern!r}: {exc}") from exc
        return patterns
