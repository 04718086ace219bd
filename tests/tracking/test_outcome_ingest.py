"""Outcomes and the rollups: reports stay exact when an outcome changes a folded-in event;
racing copies of a batch apply once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from tests.servers import test_database_url
from tests.tracking.test_services import (
    assert_breakdowns_match_raw,
    assert_daily_equals_hourly,
    assert_matches_raw,
    ingest,
    raw_breakdowns,
    raw_recount,
    spread_events,
)
from tracking import rollups
from tracking.models import Event, EventRollup, LatencyRollup
from tracking.outcome_ingest import record_outcomes
from tracking.reports import savings_report

pytestmark = pytest.mark.django_db(transaction=True)


def outcomes_for(events: list[dict], *, seed: int = 0) -> list[dict]:
    """Outcomes that change what a rollup sums: tokens (so cost), latency, success, quality."""
    return [
        {
            "event_id": event["event_id"],
            "prompt_tokens": 3000 + 17 * i,
            "completion_tokens": 900 + seed,
            "latency_ms": 400.0 + 13 * i,
            "success": i % 3 != 0,
            "error": "" if i % 3 else "upstream 500",
            "quality": [0.2, 0.9, 1.0, None][i % 4],
        }
        for i, event in enumerate(events)
    ]


def raw_quality(router, start: datetime) -> tuple[int, float]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(quality), coalesce(sum(quality), 0) FROM tracking_event "
            'WHERE router_id = %s AND "timestamp" >= %s',
            [router.pk, start],
        )
        return cursor.fetchone()


def assert_report_exact(router, now: datetime, period_days: int = 3) -> dict:
    report = savings_report(router=router, period_days=period_days, now=now)
    begin = datetime.fromisoformat(report["start"])
    assert_matches_raw(report, raw_recount(router, begin))
    assert_breakdowns_match_raw(report, raw_breakdowns(router, begin, now + timedelta(hours=1)))
    samples, total = raw_quality(router, begin)
    assert report["quality_samples"] == samples
    assert report["average_quality"] == pytest.approx(total / samples)
    return report


def rollup_sums(router) -> tuple[int, float, int]:
    """(requests, cost, latency histogram count) held by the hourly rollups."""
    rows = EventRollup.objects.filter(router=router)
    hists = LatencyRollup.objects.filter(router=router).values_list("hist", flat=True)
    hist = sum(sum(h) for h in hists)
    return sum(r.requests for r in rows), sum(r.cost for r in rows), hist


def test_outcomes_after_rollup__report_equals_raw_recount_before_and_after_next_run(router):
    now = datetime.now(UTC)
    start = now - timedelta(days=2, hours=11, minutes=3)
    folded = spread_events(400, start=start)  # every 7 minutes over ~47 hours: days and hours
    assert ingest(router, folded).accepted == 400
    assert rollups.rollup_events() == 400
    tail = spread_events(60, start=start + timedelta(minutes=2), seed=1)
    assert ingest(router, tail).accepted == 60  # not rolled up yet
    before = savings_report(router=router, period_days=3, now=now)
    assert before["quality_samples"] == 0
    assert before["average_quality"] is None

    changed = folded[::3] + tail[::2]  # 134 folded-in events, 30 in the tail
    result = record_outcomes(router_id=router.pk, payload={"outcomes": outcomes_for(changed)})
    assert (result.accepted, result.duplicates, result.rejected) == (164, 0, [])

    report = assert_report_exact(router, now)
    assert report["total_requests"] == 460
    assert report["quality_samples"] == 123  # every 4th outcome has no quality
    assert report["actual_cost"] != before["actual_cost"]
    assert report["success_rate"] != before["success_rate"]

    # The next run folds the changed rows' new values (and the 60 new events) in once.
    assert rollups.rollup_events() == 60 + 134
    assert rollups.rollup_events() == 0
    after = assert_report_exact(router, now)
    for name in ("total_requests", "success_rate", "actual_cost", "average_quality"):
        assert after[name] == pytest.approx(report[name], rel=1e-12), name
    assert_daily_equals_hourly(router)
    requests, cost, hist = rollup_sums(router)
    raw = raw_recount(router, start - timedelta(hours=1))
    assert (requests, hist) == (460, 460)
    assert cost == pytest.approx(raw["actual_cost"], rel=1e-9)
    # Outcomes again (a retry): duplicates, nothing moves.
    again = record_outcomes(router_id=router.pk, payload={"outcomes": outcomes_for(changed)})
    assert (again.accepted, again.duplicates) == (0, 164)
    assert rollups.rollup_events() == 0


def test_outcome_between_rollup_runs__rebuild_agrees(router):
    now = datetime.now(UTC)
    events = spread_events(50, start=now - timedelta(hours=10))
    ingest(router, events)
    rollups.rollup_events()
    record_outcomes(router_id=router.pk, payload={"outcomes": outcomes_for(events[:20])})

    rollups.rebuild_rollups(router_id=router.pk, since=now - timedelta(days=1))

    # The rebuild counts only rows below the watermark: the 20 changed rows are in the tail.
    assert rollup_sums(router)[0] == 30
    assert_report_exact(router, now, period_days=1)
    assert rollups.rollup_events() == 20
    assert_report_exact(router, now, period_days=1)


def test_two_identical_batches_racing__applied_once(router):
    events = spread_events(200, start=datetime.now(UTC) - timedelta(hours=24))
    ingest(router, events)
    rollups.rollup_events()
    payload = {"outcomes": outcomes_for(events)}
    results = []

    def post() -> None:
        try:
            results.append(record_outcomes(router_id=router.pk, payload=payload))
        finally:
            connection.close()

    # Hold the watermark: both batches get as far as waiting for it, then race for the rows.
    with (
        psycopg.connect(test_database_url()) as blocker,
        psycopg.connect(test_database_url(), autocommit=True) as watcher,
    ):
        blocker.execute("SELECT 1 FROM tracking_rollupwatermark WHERE id = 1 FOR UPDATE")
        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        waiting, deadline = 0, time.monotonic() + 30
        while waiting < 2 and time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%tracking_rollupwatermark%FOR SHARE%'"
            ).fetchone()[0]
        assert waiting == 2
        blocker.rollback()
    for thread in threads:
        thread.join()

    assert sorted((r.accepted, r.duplicates) for r in results) == [(0, 200), (200, 0)]
    assert Event.objects.filter(router=router, outcome_at__isnull=False).count() == 200
    assert rollups.rollup_events() == 200
    assert rollup_sums(router)[0] == 200
    assert_report_exact(router, datetime.now(UTC), period_days=1)
