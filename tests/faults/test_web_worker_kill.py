"""kill -9 of the uvicorn worker serving the SDK, mid-ingestion: no event lost, none doubled."""

from __future__ import annotations

import threading

import pytest

from routing import CostTracker
from tests.faults.stack import kill9, wait_for, worker_serving

pytestmark = pytest.mark.slow

EVENTS = 12_000


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
        ids: list[str] = []

        def produce() -> None:
            for i in range(EVENTS):
                ids.append(
                    tracker.track_routing_decision(
                        f"prompt {i}", ["technical"], "routellm", "gpt-3.5-turbo", None
                    )
                )
                if i % 250 == 0:
                    threading.Event().wait(0.01)  # a steady stream, not one burst

        producer = threading.Thread(target=produce)
        producer.start()
        wait_for(lambda: stack.stored_events(router) >= EVENTS // 4, 60)
        # The worker holding the sender's keep-alive connection, so the kill cuts its batches.
        victim = worker_serving(master.pid, stack.port)
        assert victim is not None
        kill9(victim)
        producer.join()

        assert stack.stored_events(router) < EVENTS  # killed in the middle, not after
        tracker.flush(timeout=30)
        # What the sender gave up on went to the spool, replayed every few seconds.
        wait_for(lambda: stack.stored_events(router) >= EVENTS, 60)
        tracker.close()

    stored = stack.event_ids(router)
    assert len(stored) == EVENTS  # none doubled (the unique event_id would refuse it anyway)
    assert set(stored) == set(ids)  # none lost
    assert tracker.sender.counts["events"].dropped == 0
