"""What-if replay: at the used threshold it is what happened; elsewhere it moves exactly the
calls a threshold moves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from tests.tracking.winrate_events import beta_rates, ingest_and_fold, routed_events
from tracking import rollups
from tracking.selectors import price_book
from tracking.whatif import what_if

pytestmark = pytest.mark.django_db(transaction=True)


def raw_events(router) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT strong_win_rate, model_tier, cost, coalesce(baseline_cost, cost), "
            "prompt_tokens, completion_tokens FROM tracking_event WHERE router_id = %s",
            [router.pk],
        )
        return cursor.fetchall()


@pytest.mark.parametrize("used", [0.11593, 0.3])  # inside a bucket, and on a bucket edge
def test_replay_at_the_used_threshold__equals_the_observed_figures(router, used):
    ingest_and_fold(router, routed_events(beta_rates(1500, 2, 5, seed=2), threshold=used))
    ingest_and_fold(
        router, routed_events(beta_rates(500, 3, 3, seed=3), threshold=used, domain="medical")
    )

    result = what_if(router=router, threshold=used, days=7)

    assert result.predicted == result.observed
    rows = raw_events(router)
    assert result.observed.requests == 2000
    assert result.observed.strong == sum(tier == "strong" for _, tier, *_ in rows)
    assert result.observed.cost == pytest.approx(sum(r[2] for r in rows), rel=1e-12)
    assert result.observed.baseline_cost == pytest.approx(sum(r[3] for r in rows), rel=1e-12)
    one = what_if(router=router, threshold=used, days=7, domain="medical")
    assert one.predicted == one.observed and one.observed.requests == 500


def test_replay_lower_threshold__weak_calls_above_it_go_strong_at_their_baseline(router):
    ingest_and_fold(router, routed_events(beta_rates(2000, 2, 5, seed=4), threshold=0.3))

    result = what_if(router=router, threshold=0.2, days=7)

    rows = raw_events(router)
    assert result.predicted.strong == sum(rate >= 0.2 for rate, *_ in rows)
    expected = sum(baseline if rate >= 0.2 else cost for rate, _, cost, baseline, *_ in rows)
    assert result.predicted.cost == pytest.approx(expected, rel=1e-9)
    assert result.predicted.savings < result.observed.savings


def test_replay_higher_threshold__strong_calls_below_it_go_weak_at_the_weak_price(router):
    ingest_and_fold(router, routed_events(beta_rates(2000, 2, 5, seed=5), threshold=0.3))
    price = price_book().price("gpt-3.5-turbo", datetime.now(UTC))

    result = what_if(router=router, threshold=0.5, days=7)

    rows = raw_events(router)
    assert result.predicted.strong == sum(rate >= 0.5 for rate, *_ in rows)
    expected = sum(
        cost if rate >= 0.5 or tier == "weak" else prompt * price.input + completion * price.output
        for rate, tier, cost, _, prompt, completion in rows
    )
    assert result.predicted.cost == pytest.approx(expected, rel=1e-9)
    assert result.predicted.savings > result.observed.savings


def test_what_if_api__viewer_reads_it_and_bad_input_names_the_field(viewer_api, router):
    ingest_and_fold(router, routed_events(beta_rates(300, 2, 5, seed=6), threshold=0.3))
    url = "/api/v1/routers/checkout/what-if"

    body = viewer_api.get(url, {"threshold": 0.3, "days": 2}).json()
    assert body["predicted"] == body["observed"] and body["observed"]["requests"] == 300
    assert body["current_threshold"] == 0.11593 and body["predicted"]["average_quality"] is None
    assert body["observed"]["quality_samples"] == 0
    for params, field in (({}, "threshold"), ({"threshold": "1.5"}, "threshold"),
                          ({"threshold": "0.2", "days": "-1"}, "days")):  # fmt: skip
        response = viewer_api.get(url, params)
        assert response.status_code == 400 and field in response.json()["errors"]


def test_replay_quality__kept_at_the_used_threshold_and_moved_calls_take_their_new_tiers(router):
    from tracking.outcome_ingest import record_outcomes

    # Weak calls scored 0.5, strong calls 0.9; every call in [0.2, 0.3) is weak at 0.3.
    events = routed_events(beta_rates(600, 2, 5, seed=12), threshold=0.3)
    ingest_and_fold(router, events)
    outcomes = [
        {"event_id": e["event_id"], "quality": 0.9 if e["model_tier"] == "strong" else 0.5}
        for e in events
    ]
    assert record_outcomes(router_id=router.pk, payload={"outcomes": outcomes}).accepted == 600
    rollups.rollup_events()
    strong = sum(e["model_tier"] == "strong" for e in events)

    used = what_if(router=router, threshold=0.3, days=7)
    assert used.predicted == used.observed
    assert used.observed.quality_samples == 600
    assert used.observed.average_quality == pytest.approx(
        (0.9 * strong + 0.5 * (600 - strong)) / 600
    )

    lower = what_if(router=router, threshold=0.2, days=7)
    now_strong = sum(e["strong_win_rate"] >= 0.2 for e in events)
    # Moved calls take the strong calls' score (their bucket has none: the window's, 0.9).
    expected = (0.9 * now_strong + 0.5 * (600 - now_strong)) / 600
    assert lower.predicted.average_quality == pytest.approx(expected)
