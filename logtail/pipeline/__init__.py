"""Everything that happens to events between the parser and the exporter.

Small processors run over each event in order (structlog style), in two halves. `Scrub` is stateless —
secret redaction, then the e-mail policy — so parse workers run it on any batch in any process. The
`Pipeline` adds the stateful half that needs the records in file order: correlation (it copies model,
provider and endpoint from values already scrubbed, so nothing it adds escapes the scrubbing) and twins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ahocorasick_rs import BytesAhoCorasick

from logtail.pipeline.correlate import TWIN, Correlator
from logtail.pipeline.emails import EMAIL_KEY, EmailPrivacy
from logtail.pipeline.redact import TRIGGER_WORDS, Redactor
from logtail.pipeline.settings import EmailPolicy, PrivacySettings
from parsers.event import Event
from parsers.records import Record

__all__ = ["TWIN", "EmailPolicy", "Pipeline", "PrivacySettings", "Processor", "Scrub"]

Processor = Callable[[Event], Event]


def _untwin(event: Event) -> Event:
    """Without the error file, a debug-file error record is the only copy: not a twin."""
    event.attributes.pop(TWIN, None)
    return event


def _run(processors: Sequence[Processor], events: list[Event]) -> list[Event]:
    for processor in processors:
        for event in events:
            processor(event)
    return events


class Scrub:
    """Redacts secrets and applies the e-mail policy, in place. Holds only caches: any order, any process."""

    __slots__ = ("_words", "processors")

    def __init__(self, settings: PrivacySettings | None = None) -> None:
        settings = settings or PrivacySettings()
        self.processors: Sequence[Processor] = (Redactor(settings.redact_patterns), EmailPrivacy(settings.email))
        # Every text a processor can change holds one of these in the record's raw bytes: a keyword or shape that
        # starts a secret, an '@' (unless addresses are kept), or a JSON escape that could spell either (`\\u0040`,
        # `:\\/\\/`); or it holds a non-ASCII byte (a character that lower-cases to a keyword letter). The user's own
        # patterns can match anything: with them every record is scrubbed. One Aho-Corasick pass finds any of the
        # words in a 1 KB record in about 2 µs, where `re` needs 45 µs for the alternation and 10 µs for a loop of
        # `in` tests.
        words = [word.encode() for word in TRIGGER_WORDS] + [b"\\u", b"\\/"]
        words += [b"@"] if settings.email != "keep" else []
        self._words = None if settings.redact_patterns else BytesAhoCorasick(words)

    def __call__(self, events: list[Event]) -> list[Event]:
        return _run(self.processors, events)

    def needed(self, data: bytes) -> bool:
        """False when no processor would change the events of records made only of these bytes: one scan of the
        raw bytes instead of every decoded string (most records name no secret and no address)."""
        words = self._words
        return words is None or not data.isascii() or bool(words.find_matches_as_indexes(data.lower()))

    def records(self, events: list[Event], records: Sequence[Record], path: str) -> list[Event]:
        """Scrubs the events of `records` (read from `path`) that `needed` says may hold something to scrub.
        An event naming `user.email` is scrubbed whatever its bytes: the policy `drop` removes the attribute."""
        if self.needed(path.encode()):
            return self(events)
        needed = self.needed
        self([e for e, r in zip(events, records, strict=True) if needed(r.data) or EMAIL_KEY in e.attributes])
        return events


class Pipeline:
    """Scrubs, correlates and marks twins. Keeps correlation state across calls.

    `error_family` says whether the error files are processed too; only then are the error-level records
    of the debug file twins (`logtail.twin=true`) that the exporter may skip.
    """

    __slots__ = ("scrub", "stateful")

    def __init__(self, settings: PrivacySettings | None = None, *, error_family: bool = True) -> None:
        self.scrub = Scrub(settings)
        stateful: list[Processor] = [Correlator()]
        if not error_family:
            stateful.append(_untwin)
        self.stateful: Sequence[Processor] = tuple(stateful)

    def join(self, events: list[Event]) -> list[Event]:
        """The stateful half on events scrubbed already (by a parse worker), in file order, in place."""
        return _run(self.stateful, events)

    def process(self, events: list[Event]) -> list[Event]:
        """The same events, in order, processed in place."""
        return self.join(self.scrub(events))
