from __future__ import annotations

from logtail.service.selfmetrics import DURATION_BOUNDS, SelfMetrics


def test_counters_add_up_and_snapshots_are_copies() -> None:
    metrics = SelfMetrics()
    metrics.count_records("debug", "exported", 10)
    metrics.count_records("debug", "dead_lettered", 2)
    metrics.add_bytes("debug", 300)
    metrics.set_lag("debug", 40)
    metrics.observe_export(0.004, acked=True)
    metrics.observe_export(60.0, acked=False)
    before = metrics.snapshot()
    metrics.count_records("debug", "exported", 1)

    assert before.records == {("debug", "exported"): 10, ("debug", "dead_lettered"): 2}
    assert before.dead_letters == 2
    assert before.bytes_read == {"debug": 300} and before.lag == {"debug": 40}
    assert before.export_count == 2 and before.export_sum == 60.004
    assert before.export_buckets[0] == 1 and before.export_buckets[len(DURATION_BOUNDS)] == 1
    assert before.last_ack_unix is not None
    assert metrics.snapshot().records["debug", "exported"] == 11
