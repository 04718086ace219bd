"""Savings reports and metrics: exact sums on a hand-computed fixture, breakdowns, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F

from controlplane.services import create_api_key, create_router, update_config
from tests.tracking.conftest import make_event, post_events
from tests.tracking.recount import (
    assert_breakdowns_match_raw,
    assert_matches_raw,
    ingest,
    raw_breakdowns,
    raw_recount,
    spread_events,
)
from tracking import reports, rollups
from tracking.models import Event, EventDailyRollup, SavingsReport
from tracking.outcome_ingest import record_outcomes
from tracking.reports import metrics_summary, overview_stats, report_between, savings_report

pytestmark = pytest.mark.django_db

# Seed prices (USD per 1M tokens): gpt-4-1106-preview 10 / 30, gpt-3.5-turbo 0.5 / 1.5.
HAND = [
    # weak, tokens: cost 1000*0.5e-6 + 500*1.5e-6 = 0.00125; baseline 0.01 + 0.015 = 0.025
    dict(selected_model="gpt-3.5-turbo", routing_method="routellm", prompt_tokens=1000,
         completion_tokens=500, latency_ms=100, domains=["technical"]),
    # strong, tokens: cost = baseline = 0.02 + 0.03 = 0.05
    dict(selected_model="gpt-4-1106-preview", routing_method="routellm", prompt_tokens=2000,
         completion_tokens=1000, latency_ms=300, domains=["technical"]),
    # weak, no tokens: the estimate 0.002; its baseline cannot be computed from tokens, so the
    # report counts it at its cost, 0.002 (no savings claimed). It used to be 0.04, the estimate
    # scaled by the strong/weak blended price ratio 40 / 2: a guess, not the contract's rule.
    dict(selected_model="gpt-3.5-turbo", routing_method="domain", estimated_cost=0.002,
         success=False, fallback_used=True, domains=["legal"]),
    # unknown model, no estimate: unpriced, in neither cost
    dict(selected_model="mystery-model", prompt_tokens=100, completion_tokens=100),
    # unknown model with an estimate: cost 0.01; baseline on tokens 0.01 + 0.03 = 0.04
    dict(selected_model="mystery-model", estimated_cost=0.01, prompt_tokens=1000,
         completion_tokens=1000),
]  # fmt: skip


@pytest.fixture
def hand_events(router_api):
    at = datetime.now(UTC) - timedelta(hours=1)
    events = [make_event(timestamp=at, **fields) for fields in HAND]
    assert post_events(router_api, events).json()["accepted"] == 5
    return events


def test_savings_report__hand_computed_fixture__exact(router, hand_events):
    report = savings_report(router=router, period_days=1)

    assert report["total_requests"] == 5
    assert report["routellm_requests"] == 2
    assert report["unpriced_requests"] == 1
    assert report["priced_requests"] == 4
    assert report["actual_cost"] == pytest.approx(0.06325, abs=1e-12)
    # baseline 0.025 + 0.05 + 0.002 + 0.04 (was 0.155 with the ratio-scaled 0.04 for event 3)
    assert report["baseline_cost"] == pytest.approx(0.117, abs=1e-12)
    assert report["estimated_savings"] == pytest.approx(0.05375, abs=1e-12)
    assert report["savings_percent"] == pytest.approx(100 * 0.05375 / 0.117)
    assert report["success_rate"] == pytest.approx(0.8)
    assert report["fallback_rate"] == pytest.approx(0.2)
    assert report["strong_share"] == pytest.approx(0.2)
    assert report["routellm_usage_rate"] == pytest.approx(0.4)
    assert report["average_cost"] == pytest.approx(0.06325 / 4)
    assert report["average_latency_ms"] == pytest.approx(200.0)
    assert 90 <= report["latency_p50_ms"] <= 330
    # Percentiles come from 20 %-wide histogram buckets.
    assert report["latency_p50_ms"] <= report["latency_p95_ms"] <= 330 * 1.2


def test_savings_report__breakdowns__by_domain_model_day(router, hand_events):
    report = savings_report(router=router, period_days=2)

    domains = {item["domain"]: item for item in report["by_domain"]}
    assert {name: d["total_requests"] for name, d in domains.items()} == {
        "technical": 2,
        "legal": 1,
        "general": 2,
    }
    assert domains["technical"]["actual_cost"] == pytest.approx(0.05125)
    models = {item["model"]: item for item in report["by_model"]}
    assert models["mystery-model"]["unpriced_requests"] == 1
    assert models["gpt-4-1106-preview"]["tier"] == "strong"
    assert len(report["by_day"]) in (3, 4)  # every UTC day the 2-day window touches
    assert sum(day["total_requests"] for day in report["by_day"]) == 5


def test_by_model__mixed_tiers__tier_of_most_requests(router_api, router):
    tiers = ("strong", "other", "strong")
    post_events(router_api, [make_event(selected_model="gpt-4o", model_tier=t) for t in tiers])

    report = savings_report(router=router, period_days=1)

    (model,) = report["by_model"]
    assert (model["model"], model["tier"], model["total_requests"]) == ("gpt-4o", "strong", 3)
    assert model["strong_share"] == report["strong_share"] == pytest.approx(2 / 3)


def test_reports_api__router_key__reads_its_own_router(router_api, hand_events):
    savings = router_api.get("/api/v1/reports/savings?period_days=3")
    summary = router_api.get("/api/v1/metrics/summary")

    assert savings.status_code == summary.status_code == 200
    assert savings.json()["estimated_savings"] == pytest.approx(0.05375)
    body = summary.json()
    for key in ("success_rate", "routellm_usage_rate", "average_cost", "average_latency_ms"):
        assert isinstance(body[key], float)
    assert body["savings_percent"] == pytest.approx(100 * 0.05375 / 0.117)
    assert body["period_days"] == 7


def test_reports_api__other_routers_events__not_counted(router_api, hand_events, actor):
    other = create_router(slug="other", actor=actor)
    _, raw = create_api_key(router=other, role="router", actor=actor)
    router_api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert router_api.get("/api/v1/reports/savings").json()["total_requests"] == 0


@pytest.mark.parametrize("value", ["0", "367", "-1", "abc", "1.5", "7d"])
def test_reports_api__bad_period_days__400(viewer_api, value):
    for path in ("/api/v1/reports/savings", "/api/v1/metrics/summary"):
        response = viewer_api.get(f"{path}?period_days={value}")

        assert response.status_code == 400
        assert "period_days" in response.json()["errors"]


def test_reports_api__no_key__refused(anonymous_api):
    assert anonymous_api.get("/api/v1/reports/savings").status_code in (401, 403)


def test_reports__no_data__all_numbers_zero(router):
    report = savings_report(router=router, period_days=7)
    summary = metrics_summary(router=router)

    for data in (report, summary):
        numbers = {
            k: v for k, v in data.items() if k not in ("router", "start", "end", "period_days")
        }
        assert numbers.pop("average_quality") is None  # null, not 0, without data
        for key, value in numbers.items():
            if not isinstance(value, list):
                assert value == 0, key
    assert len(report["by_day"]) in (8, 9)


def test_reports__events_outside_window__excluded(router_api, router):
    old = datetime.now(UTC) - timedelta(days=3)
    post_events(router_api, [make_event(timestamp=old), make_event()])

    assert savings_report(router=router, period_days=1)["total_requests"] == 1
    assert savings_report(router=router, period_days=4)["total_requests"] == 2


def test_rolling_window__exact_to_the_second(router_api, router):
    now = datetime.now(UTC)
    edge = now - timedelta(days=1)
    post_events(
        router_api,
        [
            make_event(timestamp=edge + timedelta(seconds=2)),
            make_event(timestamp=edge - timedelta(seconds=2)),
        ],
    )

    report = savings_report(router=router, period_days=1, now=now)

    assert report["total_requests"] == 1
    assert datetime.fromisoformat(report["start"]) == edge


def test_baseline__uses_the_strong_model_of_the_events_revision(router_api, router, actor):
    update_config(router=router, changes={"strong_model": "gpt-4o"}, actor=actor)  # revision 2
    tokens = dict(selected_model="gpt-3.5-turbo", prompt_tokens=1_000_000, completion_tokens=0)
    post_events(router_api, [make_event(revision=1, **tokens)])  # gpt-4-1106: $10
    assert savings_report(router=router)["baseline_cost"] == pytest.approx(10.0)

    post_events(router_api, [make_event(**tokens)])  # no revision: current config, gpt-4o $2.5

    assert savings_report(router=router)["baseline_cost"] == pytest.approx(12.5)


def test_overview_stats__todays_savings_per_router(router, hand_events, actor):
    other = create_router(slug="quiet", actor=actor)

    stats = overview_stats(routers=[router, other])

    assert stats[router.pk]["total_requests"] == 5
    assert stats[router.pk]["estimated_savings"] == pytest.approx(0.05375)
    assert stats[router.pk]["success_rate"] == pytest.approx(0.8)
    assert stats[other.pk]["total_requests"] == 0


def test_metrics_summary__savings_percent__as_in_the_savings_report(router, hand_events):
    summary = metrics_summary(router=router, period_days=1)

    assert summary["savings_percent"] == pytest.approx(100 * 0.05375 / 0.117)
    assert (
        summary["savings_percent"]
        == savings_report(router=router, period_days=1)["savings_percent"]
    )


def test_savings_report__no_tokens__weak_estimate_claims_no_savings_strong_is_its_own_baseline(
    router_api, router
):
    post_events(
        router_api,
        [
            make_event(selected_model="gpt-3.5-turbo", estimated_cost=0.002),
            make_event(selected_model="gpt-4-1106-preview", estimated_cost=0.03),
            make_event(selected_model="gpt-3.5-turbo", prompt_tokens=1000, estimated_cost=0.001),
        ],
    )

    report = savings_report(router=router, period_days=1)

    # Stored rows say what is known: no baseline where it cannot be computed from tokens.
    stored = Event.objects.filter(router=router).values_list("estimated_cost", "baseline_cost")
    assert dict(stored) == {0.002: None, 0.03: 0.03, 0.001: None}
    assert report["unpriced_requests"] == 0
    assert report["actual_cost"] == pytest.approx(0.033)
    assert report["baseline_cost"] == pytest.approx(0.033)
    assert report["estimated_savings"] == pytest.approx(0.0, abs=1e-12)


def test_report_api__user_names_unknown_router__404(operator_user, router):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(operator_user)
    assert client.get("/api/v1/reports/savings?router=ghost").status_code == 404
    assert client.get("/api/v1/reports/savings?router=checkout").status_code == 200


def test_savings_fraction__of_the_baseline__none_without_one():
    assert reports.savings_fraction({"estimated_savings": 1.5, "baseline_cost": 6.0}) == 0.25
    assert reports.savings_fraction({"estimated_savings": 0.0, "baseline_cost": 0.0}) is None
    assert reports.savings_fraction(None) is None


# --- Rollups, hourly rows and raw events give the same report ---------------------------------


@pytest.mark.django_db(transaction=True)
def test_reports__daily_hourly_raw_and_tail__breakdowns_equal_raw_recount(router):
    now = datetime.now(UTC)
    start = now - timedelta(days=2, hours=12, minutes=3)
    ingest(router, spread_events(500, start=start))  # every 7 minutes over ~58 hours
    assert rollups.rollup_events() == 500
    ingest(router, spread_events(200, start=start + timedelta(minutes=2), seed=2))  # the tail

    for period in (1, 2, 3, 4):
        report = savings_report(router=router, period_days=period, now=now)
        begin = datetime.fromisoformat(report["start"])
        assert_matches_raw(report, raw_recount(router, begin))
        assert_breakdowns_match_raw(report, raw_breakdowns(router, begin, now + timedelta(hours=1)))
    # Bounds off the hour and off the day: raw edge hours, hourly rows and daily rows together.
    for begin, end in [
        (start + timedelta(minutes=31), now - timedelta(minutes=17)),
        (start + timedelta(hours=20, seconds=7), start + timedelta(days=2, hours=3, minutes=1)),
        (start + timedelta(minutes=5), start + timedelta(minutes=50)),  # inside one hour
    ]:
        report = report_between(router=router, start=begin, end=end)
        raw = raw_breakdowns(router, begin, end)
        assert report["total_requests"] == sum(v[0] for k, v in raw.items() if k[0] == "day")
        assert_breakdowns_match_raw(report, raw)
    # The whole days of a long window come from the daily rows (one per key per day), not
    # from 24 hourly rows each: marking them shows up in the 3-day report only.
    before = {p: savings_report(router=router, period_days=p, now=now) for p in (1, 3)}
    whole_day = (now - timedelta(days=1)).date()
    marked = EventDailyRollup.objects.filter(router=router, day=whole_day).update(
        requests=F("requests") + 1000
    )
    assert marked
    assert savings_report(router=router, period_days=3, now=now)["total_requests"] == (
        before[3]["total_requests"] + 1000 * marked
    )
    assert savings_report(router=router, period_days=1, now=now) == before[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("rolled_up", [False, True])
def test_report_between__window_inside_one_hour__counts_only_that_window(router, rolled_up):
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
    ingest(router, [make_event(timestamp=hour + timedelta(minutes=m)) for m in range(60)])
    if rolled_up:
        assert rollups.rollup_events() == 60

    report = report_between(
        router=router, start=hour + timedelta(minutes=10), end=hour + timedelta(minutes=40)
    )

    assert report["total_requests"] == 30  # minutes 10..39, not the 10 before the window
    assert [d["total_requests"] for d in report["by_day"]] == [30]


@pytest.mark.django_db
def test_daily_report__stored_once_per_day(router):
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    ingest(router, [make_event(timestamp=at, prompt_tokens=1000) for _ in range(3)])

    reports.store_daily_report(router_id=router.pk, day=day)
    reports.store_daily_report(router_id=router.pk, day=day)

    report = SavingsReport.objects.get(router=router, day=day)
    assert report.data["total_requests"] == 3
    assert [d["day"] for d in report.data["by_day"]] == [day.isoformat()]


def test_quality__averaged_per_domain_model_tier_and_day(router_api, router):
    at = datetime.now(UTC) - timedelta(hours=2)
    events = [
        make_event(timestamp=at, selected_model="gpt-3.5-turbo", domains=["legal"]),
        make_event(timestamp=at, selected_model="gpt-3.5-turbo", domains=["technical"]),
        make_event(timestamp=at, selected_model="gpt-4-1106-preview", domains=["legal"]),
        make_event(timestamp=at, selected_model="gpt-4-1106-preview", domains=["technical"]),
    ]
    post_events(router_api, events)
    scores = [0.5, 1.0, 0.75, None]  # the last outcome reports success only: no quality
    outcomes = [
        {"event_id": e["event_id"], "quality": q, "success": True}
        for e, q in zip(events, scores, strict=True)
    ]
    assert record_outcomes(router_id=router.pk, payload={"outcomes": outcomes}).accepted == 4

    report = savings_report(router=router, period_days=1)

    assert (report["average_quality"], report["quality_samples"]) == (pytest.approx(0.75), 3)
    domains = {d["domain"]: d for d in report["by_domain"]}
    assert domains["legal"]["average_quality"] == pytest.approx(0.625)
    assert domains["technical"]["average_quality"] == pytest.approx(1.0)
    assert domains["technical"]["quality_samples"] == 1
    models = {m["model"]: m for m in report["by_model"]}
    assert models["gpt-3.5-turbo"]["average_quality"] == pytest.approx(0.75)
    assert models["gpt-4-1106-preview"]["quality_samples"] == 1
    tiers = {t["tier"]: t for t in report["by_tier"]}
    assert tiers["weak"]["average_quality"] == pytest.approx(0.75)
    assert tiers["strong"]["average_quality"] == pytest.approx(0.75)
    assert tiers["strong"]["total_requests"] == 2
    day = next(d for d in report["by_day"] if d["total_requests"])
    assert day["quality_samples"] == 3
    assert [d["average_quality"] for d in report["by_day"] if not d["total_requests"]] == [
        None for d in report["by_day"] if not d["total_requests"]
    ]
    summary = metrics_summary(router=router, period_days=1)
    assert (summary["average_quality"], summary["quality_samples"]) == (pytest.approx(0.75), 3)
