"""kill -9 of the uvicorn worker serving the SDK, mid-ingestion: no event lost, none doubled."""

from __future__ import annotations

import time

import pytest

from routing import CostTracker
from tests.faults.producer import Producer
from tests.faults.stack import kill9, wait_for, worker_serving

pytestmark = pytest.mark.slow


def test_web_worker_killed_mid_ingestion__every_event_stored_once(stack, tmp_path):
    router = stack.routers["webkill"]
    with stack.web() as master:
        tracker = CostTracker(
            stack.base,
            router.router,
            spool_dir=tmp_path / "spool",
            batch_size=250,
            flush_interval=0.05,
        )
        with Producer(tracker, per_tick=100) as producer:
            wait_for(lambda: stack.stored_events(router) >= 2000, 60)
            # The worker holding the sender's keep-alive connection, so the kill cuts its
            # batches (one in flight, or the next one on a dead connection).
            victim = worker_serving(master.pid, stack.port)
            assert victim is not None
            kill9(victim)
            time.sleep(2)  # the router goes on tracking; uvicorn replaces the worker
        tracker.flush(timeout=30)
        # What the sender gave up on went to the spool, replayed every few seconds.
        wait_for(lambda: stack.stored_events(router) >= len(producer.ids), 60)
        tracker.close()

    assert producer.errors == []
    stored = stack.event_ids(router)
    assert len(stored) == len(producer.ids)  # none doubled
    assert set(stored) == set(producer.ids)  # none lost
    assert tracker.sender.counts["events"].dropped == 0
