"""CostTracker in local mode: the migration guide's in-memory behaviour."""

from __future__ import annotations

import uuid

import pytest

from routing import CostTracker, RoutingMetrics


@pytest.fixture
def tracker(monkeypatch) -> CostTracker:
    monkeypatch.delenv("ROUTEPLANE_URL", raising=False)
    monkeypatch.delenv("ROUTEPLANE_API_KEY", raising=False)
    return CostTracker()


def test_track__local__returns_uuid_and_keeps_no_raw_text(tracker):
    event_id = tracker.track_routing_decision(
        text="What is 2+2?",
        domains=["technical"],
        routing_method="simulation",
        selected_model="gpt-3.5-turbo",
        estimated_cost=0.001,
    )

    assert uuid.UUID(event_id).version == 4
    assert not tracker.is_remote
    (event,) = tracker._local_events()
    assert "What is 2+2?" not in repr(event)
    assert event["text_length"] == len("What is 2+2?")
    assert len(event["text_sha256"]) == 64


def test_guide_test_script__report_counts_tracked_requests(tracker):
    for query in ["What is 2+2?", "Explain quantum computing in detail", "Write a sort"]:
        tracker.track_routing_decision(
            text=query,
            domains=["technical"],
            routing_method="simulation",
            selected_model="gpt-3.5-turbo" if len(query) < 50 else "gpt-4-1106-preview",
            estimated_cost=0.001,
        )

    report = tracker.get_cost_savings_report(period_days=1)

    assert isinstance(report, RoutingMetrics)
    assert report.total_requests == 3
    assert report.routellm_requests == 0
    assert report.success_rate == 1.0
    # No tokens: each estimate scaled by the strong/weak blended price ratio (40 / 2).
    assert report.actual_cost == pytest.approx(0.003)
    assert report.estimated_savings == pytest.approx(3 * 0.001 * 19)


def test_metrics_summary__local__seed_keys_and_values(tracker):
    tracker.track_routing_decision(
        "a", ["legal"], "routellm", "gpt-3.5-turbo", None,
        prompt_tokens=1000, completion_tokens=0, latency_ms=100.0,
    )  # fmt: skip
    tracker.track_routing_decision(
        "b", [], "routellm", "gpt-4-1106-preview", None,
        prompt_tokens=1000, completion_tokens=0, latency_ms=300.0, success=False,
    )  # fmt: skip
    tracker.track_routing_decision("c", [], "domain", "unknown-model", None)

    summary = tracker.get_metrics_summary()

    assert summary["success_rate"] == pytest.approx(2 / 3)
    assert summary["routellm_usage_rate"] == pytest.approx(2 / 3)
    assert summary["average_cost"] == pytest.approx((0.0005 + 0.01) / 2)
    assert summary["average_latency_ms"] == pytest.approx(200.0)
    assert summary["unpriced_requests"] == 1
    assert summary["strong_share"] == pytest.approx(1 / 3)


def test_report__no_events__zeros_not_errors(tracker):
    report = tracker.get_cost_savings_report()

    assert report.total_requests == 0
    assert report.success_rate == 0.0
    assert report.estimated_savings == 0.0
    assert tracker.flush(timeout=0.1) is True


def test_track__extra_fields_kept_unknown_ignored(tracker):
    tracker.track_routing_decision(
        "x", ["creative"], "routellm", "gpt-3.5-turbo", 0.1,
        strong_win_rate=0.3, threshold=0.11593, ab_group="b", revision=4, not_a_field=1,
    )  # fmt: skip

    (event,) = tracker._local_events()
    assert event["strong_win_rate"] == 0.3
    assert event["ab_group"] == "b"
    assert event["revision"] == 4
    assert "not_a_field" not in event
