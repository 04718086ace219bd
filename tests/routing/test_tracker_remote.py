"""CostTracker in remote mode against a live control plane (Django's live_server)."""

from __future__ import annotations

import socket
import time

import pytest

from routing import CostTracker
from tracking.models import Event

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens here any more


def track(tracker: CostTracker, count: int, text: str = "a private prompt") -> list[str]:
    return [
        tracker.track_routing_decision(
            text=f"{text} {i}",
            domains=["technical"],
            routing_method="routellm",
            selected_model="gpt-3.5-turbo",
            estimated_cost=0.001,
            prompt_tokens=100,
            completion_tokens=20,
            latency_ms=50.0,
        )
        for i in range(count)
    ]


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_remote__flush__delivers_every_event_once_without_text(
    live_server, router, router_key, tmp_path
):
    tracker = CostTracker(url=live_server.url, api_key=router_key, spool_dir=tmp_path)
    ids = track(tracker, 2500)

    assert tracker.flush(timeout=60) is True

    stored = {
        str(e) for e in Event.objects.filter(router=router).values_list("event_id", flat=True)
    }
    assert stored == set(ids)
    assert tracker.sent == 2500 and tracker.dropped == 0
    assert not Event.objects.filter(error__contains="private").exists()
    report = tracker.get_cost_savings_report(period_days=1)
    assert report.total_requests == 2500
    assert report.routellm_requests == 2500
    assert tracker.get_metrics_summary()["success_rate"] == 1.0
    tracker.close()


def test_remote__spool_full__counts_dropped_events(router_key, tmp_path):
    tracker = CostTracker(
        url=closed_port_url(), api_key=router_key, spool_dir=tmp_path,
        max_queue=10, batch_size=10, spool_max_bytes=4000, max_send_attempts=1,
    )  # fmt: skip
    track(tracker, 100)
    tracker.close(timeout=1)

    assert tracker.dropped > 0
    assert tracker.spilled > 0
    assert tracker.dropped + tracker.spilled + tracker.sent == 100
    assert sum(p.stat().st_size for p in tracker.spool_dir.glob("batch-*.json")) <= 4000


def test_remote__key_refused__batch_kept_in_the_spool(live_server, router, tmp_path, caplog):
    tracker = CostTracker(url=live_server.url, api_key="rp_revoked-or-unknown", spool_dir=tmp_path)
    track(tracker, 5)

    assert tracker.flush(timeout=20) is True
    assert Event.objects.count() == 0
    # Not dropped: a refused key may be fixed or re-enabled, and the events are not at fault.
    assert tracker.dropped == 0 and tracker.spilled == 5
    assert len(list(tracker.spool_dir.glob("batch-*.json"))) == 1
    assert "refused this API key (HTTP 401)" in caplog.text
    tracker.close()


def test_remote__invalid_events__validated_off_the_callers_thread_counted_never_sent(
    live_server, router, router_key, tmp_path, caplog
):
    tracker = CostTracker(url=live_server.url, api_key=router_key, spool_dir=tmp_path)
    good = track(tracker, 3)
    negative_cost = tracker.track_routing_decision("a", ["legal"], "routellm", "gpt-4o", -1.0)
    nul_domain = tracker.track_routing_decision("a", ["le\x00gal"], "routellm", "gpt-4o", None)
    good += track(tracker, 2, text="after")

    # Each call returned its id at once; the sender thread validated the queued events.
    assert tracker.flush(timeout=60) is True

    stored = {
        str(e) for e in Event.objects.filter(router=router).values_list("event_id", flat=True)
    }
    assert stored == set(good)
    assert negative_cost not in stored and nul_domain not in stored
    assert tracker.sent == 5 and tracker.dropped == 2
    assert "estimated_cost" in caplog.text and "domains" in caplog.text
    # The process's own copy (the reports' fallback) keeps only what the schema accepts.
    assert {str(t.event.event_id) for t in tracker.local_events()} == set(good)
    tracker.close()
