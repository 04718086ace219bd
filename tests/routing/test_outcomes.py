"""Outcomes: CostTracker.record_outcome and RoutingDecision.record_outcome, local and remote."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from routing import CostTracker
from tests.routing.fakeplane import FakePlane

STRONG, WEAK = "gpt-4-1106-preview", "gpt-3.5-turbo"


@pytest.fixture(autouse=True)
def _local(monkeypatch):
    monkeypatch.delenv("ROUTEPLANE_URL", raising=False)
    monkeypatch.delenv("ROUTEPLANE_API_KEY", raising=False)


@pytest.fixture
def plane() -> Iterator[FakePlane]:
    plane = FakePlane()
    yield plane
    plane.stop()


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def decide(tracker: CostTracker, model: str = WEAK, domain: str = "legal") -> str:
    return tracker.track_routing_decision("a prompt", [domain], "routellm", model, None)


def test_local__outcome_reprices_event_and_report_shows_quality():
    tracker = CostTracker()
    weak = decide(tracker, WEAK)
    strong = decide(tracker, STRONG, domain="medical")
    assert tracker.get_cost_savings_report().unpriced_requests == 2

    assert tracker.record_outcome(weak, prompt_tokens=1000, completion_tokens=500, quality=0.5)
    assert tracker.record_outcome(
        strong, prompt_tokens=100, completion_tokens=100, latency_ms=900.0, quality=1.0
    )

    report = tracker.get_cost_savings_report(period_days=1)
    assert report.unpriced_requests == 0
    weak_cost = 1000 * 0.5e-6 + 500 * 1.5e-6
    strong_cost = 100 * 10e-6 + 100 * 30e-6
    assert report.actual_cost == pytest.approx(weak_cost + strong_cost)
    assert report.baseline_cost == pytest.approx(1000 * 10e-6 + 500 * 30e-6 + strong_cost)
    assert report.average_quality == pytest.approx(0.75) and report.quality_samples == 2
    assert report.average_latency_ms == pytest.approx(900.0)
    by_domain = {row["domain"]: row for row in report.by_domain}
    assert by_domain["legal"]["average_quality"] == 0.5
    assert by_domain["medical"]["quality_samples"] == 1
    by_model = {row["model"]: row for row in report.by_model}
    assert by_model[STRONG]["average_quality"] == 1.0


def test_local__no_quality__average_quality_none():
    tracker = CostTracker()
    decide(tracker)

    report = tracker.get_cost_savings_report()

    assert report.average_quality is None and report.quality_samples == 0


def test_local__failure_outcome__counts_in_success_rate():
    tracker = CostTracker()
    event_id = decide(tracker)

    tracker.record_outcome(event_id, success=False, error="HTTP 500 from provider")

    assert tracker.get_cost_savings_report().success_rate == 0.0
    (tracked,) = tracker.local_events()
    assert tracked.event.error == "HTTP 500 from provider"


def test_local__same_outcome_twice_counted_once__different_one_refused(caplog):
    tracker = CostTracker()
    event_id = decide(tracker)

    assert tracker.record_outcome(event_id, prompt_tokens=10, completion_tokens=5, quality=1.0)
    assert tracker.record_outcome(event_id, prompt_tokens=10, completion_tokens=5, quality=1.0)
    assert not tracker.record_outcome(event_id, prompt_tokens=99, completion_tokens=5)
    assert not tracker.record_outcome(event_id, prompt_tokens=98, completion_tokens=5)

    report = tracker.get_cost_savings_report()
    assert report.quality_samples == 1 and report.prompt_tokens == 10
    assert caplog.text.count("already has another one") == 1  # logged once


@pytest.mark.parametrize(
    "bad",
    [{"quality": 1.5}, {"quality": -0.1}, {"prompt_tokens": -1}, {"latency_ms": "slow"}],
)
def test_local__invalid_outcome__refused_never_raises(bad, caplog):
    tracker = CostTracker()
    event_id = decide(tracker)

    assert tracker.record_outcome(event_id, **bad) is False

    assert tracker.get_cost_savings_report().quality_samples == 0
    assert "outcome not recorded" in caplog.text


def test_local__unknown_event__refused_never_raises():
    tracker = CostTracker()

    assert tracker.record_outcome("not-a-uuid", quality=1.0) is False
    assert tracker.record_outcome("3f1c2a8e-0000-4000-8000-000000000000", quality=1.0) is False


def test_remote__outcomes_posted_after_their_events_in_batches(plane, tmp_path):
    tracker = CostTracker(url=plane.url, api_key="rp_k", spool_dir=tmp_path)
    ids = [decide(tracker) for _ in range(30)]
    for n, event_id in enumerate(ids):
        tracker.record_outcome(event_id, prompt_tokens=100 + n, completion_tokens=10, quality=1.0)

    assert tracker.flush(timeout=10)

    assert set(plane.outcomes) == set(ids)
    posted = [path for path, _, _ in plane.posts]
    assert posted.index("/api/v1/events/outcomes") > posted.index("/api/v1/events")
    body = plane.outcomes[ids[3]]
    assert body == {"event_id": ids[3], "prompt_tokens": 103, "completion_tokens": 10,
                    "quality": 1.0}  # fmt: skip
    assert len(plane.posts) < 30  # batched, not one request per outcome
    tracker.close()


def test_remote__outcome_right_after_its_event__applied_once_other_refused(plane, tmp_path):
    # The event is still queued (validated later, on the sender thread): the outcome finds it.
    tracker = CostTracker(url=plane.url, api_key="rp_k", spool_dir=tmp_path, flush_interval=1.0)
    event_id = decide(tracker)

    assert tracker.record_outcome(event_id, prompt_tokens=100, completion_tokens=10) is True
    assert tracker.record_outcome(event_id, prompt_tokens=100, completion_tokens=10) is True
    assert tracker.record_outcome(event_id, prompt_tokens=5) is False
    (tracked,) = tracker.local_events()
    assert str(tracked.event.event_id) == event_id and tracked.event.prompt_tokens == 100

    assert tracker.flush(timeout=10)
    assert plane.outcomes[event_id] == {
        "event_id": event_id, "prompt_tokens": 100, "completion_tokens": 10,
    }  # fmt: skip
    tracker.close()


def test_remote__unknown_event_rejection__retried_until_the_event_arrives(plane, tmp_path):
    tracker = CostTracker(url=plane.url, api_key="rp_k", spool_dir=tmp_path)
    tracker.sender.outcome_retry_seconds = 30
    # An event this process never sent (another worker's, or still in a spool elsewhere).
    late_event = "7c9e6679-7425-40de-944b-e07fc1f2b5a1"

    assert tracker.record_outcome(late_event, quality=0.25)
    assert tracker.flush(timeout=10)
    wait_for(lambda: tracker.sender.waiting_outcomes == 1)
    assert late_event not in plane.outcomes

    plane.events[late_event] = {"event_id": late_event}  # the event is stored at last
    wait_for(lambda: late_event in plane.outcomes)
    assert plane.outcomes[late_event]["quality"] == 0.25
    tracker.close()


def test_remote__other_rejection__logged_once_and_dropped(plane, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    tracker = CostTracker(url=plane.url, api_key="rp_k", spool_dir=tmp_path)
    event_id = decide(tracker)
    tracker.record_outcome(event_id, quality=1.0)
    assert tracker.flush(timeout=10)
    # A different outcome for the same event, as another process might send: the server
    # refuses it for good.
    plane.outcomes[event_id] = {"event_id": event_id, "quality": 0.0}
    other = CostTracker(url=plane.url, api_key="rp_k", spool_dir=tmp_path)
    other.record_outcome(event_id, quality=0.9)
    other.record_outcome(event_id, quality=0.8)

    assert other.flush(timeout=10)

    assert other.sender.counts["outcomes"].dropped == 2
    assert other.sender.waiting_outcomes == 0
    assert caplog.text.count("control plane rejected outcomes") == 1
    tracker.close()
    other.close()


def test_remote__control_plane_down__outcomes_spool_and_replay(plane, tmp_path):
    plane.post_status = 503
    down = CostTracker(url=plane.url, api_key="rp_k", spool_dir=tmp_path, max_send_attempts=1)
    event_id = decide(down)
    down.record_outcome(event_id, prompt_tokens=5, completion_tokens=5, quality=0.5)
    down.close(timeout=2)
    assert down.sender.counts["outcomes"].spilled == 1

    plane.post_status = 200
    up = CostTracker(url=plane.url, api_key="rp_k", spool_dir=tmp_path)
    assert up.replay_spool() == 2  # the event, then its outcome

    assert plane.outcomes[event_id]["quality"] == 0.5
    up.close()
