"""Everything that happens to events between the parser and the exporter.

`Pipeline.process` runs small processors over each event in order (structlog style): correlation
first (it reads model names the redactor would not touch anyway), then twins, then secret
redaction and the e-mail policy last, so nothing a processor adds escapes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from logtail.pipeline.correlate import TWIN, Correlator
from logtail.pipeline.emails import EmailPrivacy
from logtail.pipeline.redact import Redactor
from logtail.pipeline.settings import EmailPolicy, PrivacySettings
from parsers.event import Event

__all__ = ["TWIN", "EmailPolicy", "Pipeline", "PrivacySettings", "Processor"]

Processor = Callable[[Event], Event]


def _untwin(event: Event) -> Event:
    """Without the error file, a debug-file error record is the only copy: not a twin."""
    event.attributes.pop(TWIN, None)
    return event


class Pipeline:
    """Redacts, applies the e-mail policy, correlates and marks twins. Keeps correlation state across calls.

    `error_family` says whether the error files are processed too; only then are the error-level records
    of the debug file twins (`logtail.twin=true`) that the exporter may skip.
    """

    __slots__ = ("processors",)

    def __init__(self, settings: PrivacySettings | None = None, *, error_family: bool = True) -> None:
        settings = settings or PrivacySettings()
        processors: list[Processor] = [Correlator()]
        if not error_family:
            processors.append(_untwin)
        processors.append(Redactor(settings.redact_patterns))
        processors.append(EmailPrivacy(settings.email))
        self.processors: Sequence[Processor] = tuple(processors)

    def process(self, events: list[Event]) -> list[Event]:
        """The same events, in order, processed in place."""
        for processor in self.processors:
            for event in events:
                processor(event)
        return events
