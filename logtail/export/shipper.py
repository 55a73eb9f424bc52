"""The shipper: batches events, sends them, retries what may succeed later, bisects refusals down to the
records responsible and dead-letters those. `ship` returns only when every event is acknowledged or
dead-lettered, so the caller may commit checkpoints; it blocks meanwhile, which is the backpressure.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from logtail.export.deadletters import DeadLetters
from logtail.export.metrics import Aggregator
from logtail.export.sink import ShutdownInterrupted
from logtail.export.transport import Answer, Signal, Transport
from logtail.pipeline import TWIN
from logtail.service.selfmetrics import SelfMetrics
from parsers import UNPARSED
from parsers.event import Event

log = logging.getLogger(__name__)

BACKOFF_INITIAL: Final = 0.5
BACKOFF_MAX: Final = 30.0
RETRY_AFTER_MAX: Final = 300.0  # a server asking for longer is waited on in several rounds
METRICS_EARLIEST: Final = 1.0  # seconds between two metric exports, however many hours a replay seals


class ExportGaveUp(Exception):
    """A batch could not be delivered within the retry deadline (replay); nothing of it may be committed."""


@dataclass(slots=True)
class ShipSummary:
    by_event_name: Counter[str] = field(default_factory=Counter)  # acknowledged records per event name
    acknowledged: int = 0
    dead_lettered: int = 0
    skipped: int = 0  # debug-file twins of error-file records


Encode = Callable[[Sequence[Event], int], bytes]
EncodeMetrics = Callable[[ExportMetricsServiceRequest], bytes]


@dataclass(frozen=True, slots=True)
class MetricExport:
    """How derived metrics leave: aggregated here, encoded like the logs, sent at most every `interval` s."""

    aggregator: Aggregator
    encode: EncodeMetrics
    interval: float


class Shipper:
    """Implements `logtail.export.sink.Sink` for one destination."""

    def __init__(
        self,
        *,
        transports: dict[Signal, Transport],
        encode: Encode,
        self_metrics: SelfMetrics,
        stop: threading.Event,
        dead_letters: DeadLetters,
        batch_max_records: int,
        batch_max_bytes: int,
        metrics: MetricExport | None = None,
        ship_twins: bool = False,
        retry_deadline: float | None = None,
    ) -> None:
        self._transports = transports
        self._encode = encode
        self._self = self_metrics
        self._stop = stop
        self._dead = dead_letters
        self._max_records = batch_max_records
        self._max_bytes = batch_max_bytes
        self._ship_twins = ship_twins
        self._deadline = retry_deadline
        self._metrics = metrics
        self._metrics_sent = -float("inf")
        self._metrics_failing = False  # the last metrics export was not taken: wait the interval, however much is kept
        self.summary = ShipSummary()

    # Sink ----------------------------------------------------------------------------------------------
    def ship(self, events: Sequence[Event]) -> None:
        shipped = events
        if not self._ship_twins:
            shipped = [event for event in events if not event.attributes.get(TWIN)]
        for start in range(0, len(shipped), self._max_records):
            self._deliver(shipped[start : start + self._max_records])
        # Counted only now: had `ship` been interrupted, these events would be shipped (and counted) again.
        if len(shipped) != len(events):
            self._skip([event for event in events if event.attributes.get(TWIN)])
        if self._metrics is not None:
            self._metrics.aggregator.add(events)
            since = time.monotonic() - self._metrics_sent
            # Early when many hours are kept (a replay), at most once a second, and never while the endpoint fails:
            # each attempt may wait out the timeout, and the logs would wait with it.
            early = self._metrics.aggregator.due and since >= METRICS_EARLIEST and not self._metrics_failing
            if since >= self._metrics.interval or early:
                self._export_metrics(self._metrics, patient=False)

    def close(self) -> None:
        """Exports the final metric totals (retrying within the retry deadline unless stopping), then
        closes the connections."""
        if self._metrics is not None:
            self._export_metrics(self._metrics, patient=True)
        for transport in {id(t): t for t in self._transports.values()}.values():
            transport.close()

    # Logs ----------------------------------------------------------------------------------------------
    def _deliver(self, events: Sequence[Event]) -> None:
        """Send `events` as one request, or as halves when that one is too large or refused."""
        if not events:
            return
        try:
            body = self._encode(events, time.time_ns())
        except (ValueError, TypeError, UnicodeError) as exc:
            # Content the encoder cannot represent costs its own record (found like a refusal), never the stream.
            answer = Answer("refused", "not encodable", message=f"{type(exc).__name__}: {exc}")
        else:
            if len(body) > self._max_bytes and len(events) > 1:
                half = len(events) // 2
                self._deliver(events[:half])
                self._deliver(events[half:])
                return
            answer = self._send("logs", body)
        if answer.kind == "ok" and answer.rejected == 0:
            self._acknowledge(events)
        elif len(events) == 1 or (answer.kind == "ok" and answer.rejected >= len(events)):
            self._dead_letter(events, answer)
        else:
            # Some records are refused and the answer does not say which: halve until they are alone.
            # (After a partial success the other records were stored already and are sent again.)
            log.info("%d records refused (%s); bisecting", len(events), answer)
            half = len(events) // 2
            self._deliver(events[:half])
            self._deliver(events[half:])

    def _acknowledge(self, events: Sequence[Event]) -> None:
        counts = Counter((event.family, event.event_name) for event in events)
        for (family, name), n in counts.items():
            self._self.count_records(family, "unparsed" if name == UNPARSED else "exported", n)
            self.summary.by_event_name[name] += n
        self.summary.acknowledged += len(events)

    def _dead_letter(self, events: Sequence[Event], answer: Answer) -> None:
        self._dead.write(events, answer)
        log.warning("%d record(s) refused (%s) and written to %s", len(events), answer, self._dead.path)
        for family, n in Counter(event.family for event in events).items():
            self._self.count_records(family, "dead_lettered", n)
        self.summary.dead_lettered += len(events)

    def _skip(self, events: Sequence[Event]) -> None:
        for family, n in Counter(event.family for event in events).items():
            self._self.count_records(family, "skipped", n)
        self.summary.skipped += len(events)

    # Metrics -------------------------------------------------------------------------------------------
    def _export_metrics(self, metrics: MetricExport, *, patient: bool) -> None:
        """Sends the changed series and logtail's own metrics. Failures never fail `ship`: the logs are
        acknowledged already, and cumulative totals catch up with the next export that gets through."""
        aggregator = metrics.aggregator
        taken = aggregator.take()
        body = metrics.encode(aggregator.request(taken, self._self.snapshot(), time.time_ns()))
        self._metrics_sent = time.monotonic()
        try:
            answer = self._send("metrics", body) if patient else self._attempt("metrics", body)
        except (ShutdownInterrupted, ExportGaveUp) as exc:
            answer = Answer("retry", "not sent", message=str(exc))
        self._metrics_failing = answer.kind != "ok"
        if answer.kind == "retry":
            aggregator.give_back(taken)
            log.warning("metrics not exported yet (%s)", answer)
        elif answer.kind == "refused" or answer.rejected:
            self._self.count_error("export_metrics_refused")
            log.warning("metric points refused (%d rejected): %s", answer.rejected, answer)

    # Sending -------------------------------------------------------------------------------------------
    def _attempt(self, signal: Signal, body: bytes) -> Answer:
        began = time.monotonic()
        answer = self._transports[signal].send(signal, body)
        self._self.observe_export(time.monotonic() - began, acked=answer.kind == "ok" and not answer.rejected)
        return answer

    def _send(self, signal: Signal, body: bytes) -> Answer:
        """The first answer that is not worth retrying. Retries with exponential backoff and jitter, never
        waiting less than a Retry-After; raises ShutdownInterrupted when `stop` is set, ExportGaveUp once
        failures have lasted the retry deadline (None: retries forever)."""
        deadline = self._deadline
        first_failure: float | None = None
        attempt = 0
        while True:
            answer = self._attempt(signal, body)
            if answer.kind != "retry":
                return answer
            if self._stop.is_set():
                raise ShutdownInterrupted(f"stopping while exporting {signal}")
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            cap = min(BACKOFF_MAX, BACKOFF_INITIAL * 2**attempt)
            backoff = cap / 2 + random.uniform(0, cap / 2)  # jitter keeps many shippers from retrying in step
            wait = max(backoff, min(answer.retry_after or 0.0, RETRY_AFTER_MAX))
            attempt += 1
            if deadline is not None and now + wait - first_failure > deadline:
                raise ExportGaveUp(f"{signal} export still failing after {now - first_failure:.1f} s ({answer})")
            self._self.count_error(f"export_{signal}_retry")
            log.warning("%s export failed (%s); retry %d in %.1f s", signal, answer, attempt, wait)
            if self._stop.wait(wait):
                raise ShutdownInterrupted(f"stopping while exporting {signal}")
