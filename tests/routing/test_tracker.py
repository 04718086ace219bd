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
    (tracked,) = tracker.local_events()
    assert "What is 2+2?" not in repr(tracked)
    assert str(tracked.event.event_id) == event_id
    assert tracked.event.text_length == len("What is 2+2?")
    assert len(tracked.event.text_sha256) == 64


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
    # No tokens: each event costs its estimate and, with no tokens to price at the strong
    # model, its baseline is that same cost (the server's rule): no savings are claimed.
    assert report.actual_cost == pytest.approx(0.003)
    assert report.baseline_cost == pytest.approx(0.003)
    assert report.estimated_savings == 0.0


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

    (tracked,) = tracker.local_events()
    assert tracked.event.strong_win_rate == 0.3
    assert tracked.event.ab_group == "b"
    assert tracked.event.revision == 4
    assert not hasattr(tracked.event, "not_a_field")


def test_report__one_token_count_missing__estimate_not_a_zero_count(tracker):
    # Counting the missing completion tokens as 0 would price 1000 prompt tokens ($0.0005)
    # and claim savings against gpt-4 ($0.01); the shared rule uses the estimate instead.
    tracker.track_routing_decision(
        "a", ["legal"], "routellm", "gpt-3.5-turbo", 0.002, prompt_tokens=1000
    )

    report = tracker.get_cost_savings_report(period_days=1)

    assert report.actual_cost == pytest.approx(0.002)
    assert report.baseline_cost == pytest.approx(0.002)
    assert report.estimated_savings == 0.0


def test_report__tokens__priced_from_the_shipped_table(tracker):
    # gpt-4o-mini is not in the old built-in table; the shipped file prices it (0.15 / 0.60).
    tracker.track_routing_decision(
        "a", ["technical"], "routellm", "gpt-4o-mini", None,
        prompt_tokens=2000, completion_tokens=1000,
    )  # fmt: skip

    report = tracker.get_cost_savings_report(period_days=1)

    assert report.unpriced_requests == 0
    assert report.actual_cost == pytest.approx(2000 * 0.15e-6 + 1000 * 0.60e-6)
    assert report.baseline_cost == pytest.approx(2000 * 10e-6 + 1000 * 30e-6)
    (row,) = report.by_model
    assert row["model"] == "gpt-4o-mini" and row["tier"] == "other"


def test_track__invalid_event__not_kept_and_counted(tracker, caplog):
    event_id = tracker.track_routing_decision("a", ["legal"], "routellm", "gpt-3.5-turbo", -1.0)

    assert uuid.UUID(event_id)
    assert tracker.local_events() == []
    assert tracker.dropped == 1
    assert "estimated_cost" in caplog.text


def test_strong_model__from_the_environment_when_not_given(monkeypatch):
    monkeypatch.delenv("ROUTEPLANE_URL", raising=False)
    monkeypatch.setenv("ROUTELLM_STRONG_MODEL", "gpt-4o")
    tracker = CostTracker()
    tracker.track_routing_decision(
        "a", [], "routellm", "gpt-4o-mini", None, prompt_tokens=1000, completion_tokens=0
    )

    report = tracker.get_cost_savings_report()

    assert tracker.strong_model == "gpt-4o"
    assert report.baseline_cost == pytest.approx(1000 * 2.5e-6)  # priced at gpt-4o
    assert CostTracker(strong_model="gpt-4").strong_model == "gpt-4"


def test_track__nul_in_a_string__refused_like_the_server_does(tracker):
    tracker.track_routing_decision("a", ["le\x00gal"], "routellm", "gpt-3.5-turbo", None)
    tracker.track_routing_decision("a", ["legal"], "route\x00llm", "gpt-3.5-turbo", None)

    assert tracker.local_events() == [] and tracker.dropped == 2
