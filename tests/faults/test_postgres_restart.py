"""PostgreSQL restarted in the middle of ingestion: the SDK spools what the server could not
store and replays it; every event is stored exactly once."""

from __future__ import annotations

import time

import pytest

from routing import CostTracker
from tests.faults.producer import Producer
from tests.faults.stack import wait_for

pytestmark = pytest.mark.slow

DOWN_SECONDS = 4  # longer than the sender's retries (2 attempts), so batches must spool


def test_postgres_restarted_mid_ingestion__sdk_spools_and_replays__nothing_lost(stack, tmp_path):
    router = stack.routers["pgrestart"]
    with stack.web():
        tracker = CostTracker(
            stack.base,
            router.router,
            spool_dir=tmp_path / "spool",
            batch_size=250,
            flush_interval=0.05,
            max_send_attempts=2,
        )
        with Producer(tracker) as producer:
            wait_for(lambda: stack.stored_events(router) >= 1000, 60)
            stack.postgres.stop()
            try:
                time.sleep(DOWN_SECONDS)  # the router keeps tracking meanwhile
            finally:
                stack.postgres.start()
            wait_for(lambda: stack.stored_events(router) >= 0, 30)  # accepting connections
            time.sleep(1)  # and goes on after the restart
        tracker.flush(timeout=30)
        counts = tracker.sender.counts["events"]
        assert counts.spilled > 0  # the outage did reach the spool
        # The spool is replayed every few seconds once the control plane answers again.
        wait_for(lambda: stack.stored_events(router) >= len(producer.ids), 90)
        wait_for(lambda: not tracker.sender.spool_files(), 30)
        tracker.close()

    assert producer.errors == []
    stored = stack.event_ids(router)
    assert len(stored) == len(producer.ids)  # none doubled
    assert set(stored) == set(producer.ids)  # none lost
    assert counts.dropped == 0
