"""The win-rate histogram: folded with the rollups, equal to a raw recount, never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from tests.tracking.winrate_events import beta_rates, ingest_and_fold, routed_events
from tracking import rollups
from tracking.models import WinRateBucket
from tracking.retention import purge_expired_events
from tracking.winrates import unfold_winrate_events, winrate_histogram

pytestmark = pytest.mark.django_db(transaction=True)

RECOUNT = """
    SELECT ("timestamp" AT TIME ZONE 'UTC')::date, domain, model_tier,
           coalesce(strong_win_rate >= threshold, model_tier = 'strong'),
           least(999, floor(strong_win_rate * 1000))::int,
           count(*), coalesce(sum(cost), 0), coalesce(sum(prompt_tokens), 0)
    FROM tracking_event WHERE router_id = %s AND strong_win_rate IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
"""


def histogram_rows(router) -> list[tuple]:
    rows = WinRateBucket.objects.filter(router=router).exclude(requests=0)
    return sorted(
        (r.day, r.domain, r.tier, r.above, r.bucket, r.requests, round(r.cost, 9), r.prompt_tokens)
        for r in rows
    )


def recount(router) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(RECOUNT, [router.pk])
        return [(*row[:6], round(row[6], 9), row[7]) for row in cursor.fetchall()]


def test_fold__equals_raw_recount_and_folds_nothing_twice(router):
    yesterday = datetime.now(UTC) - timedelta(days=1)
    ingest_and_fold(router, routed_events(beta_rates(800, 2, 5), threshold=0.3))
    ingest_and_fold(
        router, routed_events(beta_rates(500, 5, 2, seed=1), threshold=0.6, domain="medical",
                              at=yesterday, seed=1)
    )  # fmt: skip
    # An event without a win rate (not routed by RouteLLM) stays out of the histogram.
    ingest_and_fold(router, [{**routed_events([0.5], threshold=0.3)[0], "strong_win_rate": None}])

    assert rollups.rollup_events() == 0
    assert sum(r[5] for r in histogram_rows(router)) == 1300
    assert histogram_rows(router) == recount(router)


def test_unfold_then_refold__an_outcome_after_the_fold_counts_once(router):
    events = routed_events(beta_rates(300, 2, 2), threshold=0.5)
    ingest_and_fold(router, events)
    changed = [e["event_id"] for e in events[:40]]
    # What an outcome does (tracking.rollups docstring): take the folded values out, change the
    # event, and move it back to the tail with the writing transaction's id.
    with transaction.atomic(), connection.cursor() as cursor:
        unfold_winrate_events(cursor, router_id=router.pk, event_ids=changed)
        cursor.execute(
            "UPDATE tracking_event SET prompt_tokens = prompt_tokens + 1000, cost = cost * 2, "
            "ingest_xid = pg_current_xact_id()::text::bigint "
            "WHERE router_id = %s AND event_id = ANY(%s::uuid[])",
            [router.pk, changed],
        )
    assert rollups.rollup_events() == 40

    assert sum(r[5] for r in histogram_rows(router)) == 300
    assert histogram_rows(router) == recount(router)


def test_rebuild__rederives_the_histogram_from_the_events(router):
    ingest_and_fold(router, routed_events(beta_rates(400, 3, 3), threshold=0.4))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tracking_event SET cost = 1.0 WHERE router_id = %s", [router.pk])
    rollups.rebuild_rollups(router_id=router.pk, since=datetime.now(UTC) - timedelta(days=2))

    assert histogram_rows(router) == recount(router)
    assert sum(r[6] for r in histogram_rows(router)) == pytest.approx(400.0)


def test_retention__drops_the_histogram_days_it_drops_events_of(router):
    old = datetime.now(UTC) - timedelta(days=40)
    ingest_and_fold(router, routed_events(beta_rates(50, 2, 5), threshold=0.3, at=old))
    ingest_and_fold(router, routed_events(beta_rates(70, 2, 5), threshold=0.3))

    assert purge_expired_events(router_id=router.pk) == 50  # retention: 30 days

    assert sum(r[5] for r in histogram_rows(router)) == 70
    assert histogram_rows(router) == recount(router)


def test_histogram_reads__cached_parts_follow_new_folds_of_today_and_of_closed_days(router):
    now = datetime.now(UTC)
    start = (now - timedelta(days=3)).date()
    ingest_and_fold(router, routed_events(beta_rates(200, 2, 5), threshold=0.3))
    ingest_and_fold(router, routed_events(beta_rates(100, 2, 5), threshold=0.3,
                                          at=now - timedelta(days=2)))  # fmt: skip

    def total() -> int:
        return sum(row.requests for row in winrate_histogram(router_id=router.pk, start=start))

    assert total() == 300
    assert total() == 300  # now from the cache
    # Today's new calls: the watermark moved.
    ingest_and_fold(router, routed_events(beta_rates(30, 2, 5), threshold=0.3, seed=2))
    assert total() == 330
    # Late calls of a closed day: the fold bumps the router's histogram version.
    ingest_and_fold(router, routed_events(beta_rates(20, 2, 5), threshold=0.3, seed=3,
                                          at=now - timedelta(days=2, hours=1)))  # fmt: skip
    assert total() == 350
    # A rebuild re-derives closed days (here: without the cost, which it re-reads).
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tracking_event SET cost = 0 WHERE router_id = %s", [router.pk])
    rollups.rebuild_rollups(router_id=router.pk, since=now - timedelta(days=3))
    assert sum(r.cost for r in winrate_histogram(router_id=router.pk, start=start)) == 0


def test_outcomes_after_the_fold__histogram_follows_their_tokens_once(router):
    from tracking.outcome_ingest import record_outcomes

    events = routed_events(beta_rates(200, 2, 5, seed=9), threshold=0.3)
    ingest_and_fold(router, events)
    outcomes = [
        {"event_id": e["event_id"], "prompt_tokens": 5000, "completion_tokens": 900, "quality": 0.8}
        for e in events[:50]
    ]

    result = record_outcomes(router_id=router.pk, payload={"outcomes": outcomes})
    assert result.accepted == 50
    assert rollups.rollup_events() == 50

    assert sum(r[5] for r in histogram_rows(router)) == 200
    assert histogram_rows(router) == recount(router)
