"""Hourly and daily rollups with the watermark: rollups plus the tail equal a raw recount."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.tracking.recount import (
    assert_daily_equals_hourly,
    assert_matches_raw,
    ingest,
    raw_recount,
    spread_events,
)
from tracking import rollups
from tracking.models import Event, EventDailyRollup, EventRollup, LatencyDailyRollup, LatencyRollup
from tracking.reports import savings_report


@pytest.mark.django_db(transaction=True)
def test_rollup_plus_tail__equals_raw_recount(router):
    now = datetime.now(UTC)
    start = now - timedelta(days=2)
    ingest(router, spread_events(300, start=start + timedelta(minutes=3)))
    assert rollups.rollup_events() == 300
    assert EventRollup.objects.filter(router=router).exists()
    # Not rolled up yet: the report must add this tail to the rollups, exactly once.
    ingest(router, spread_events(120, start=start + timedelta(minutes=5), seed=1))

    report = savings_report(router=router, period_days=2, now=now)

    assert report["total_requests"] == 420
    assert_matches_raw(report, raw_recount(router, now - timedelta(days=2)))
    assert rollups.rollup_events() == 120
    assert rollups.rollup_events() == 0  # nothing new: folds nothing twice
    assert_matches_raw(
        savings_report(router=router, period_days=2, now=now),
        raw_recount(router, now - timedelta(days=2)),
    )
    # A 2-day window holds at least one whole UTC day: it read daily rows, kept equal to the
    # hourly ones by both incremental runs.
    assert EventDailyRollup.objects.filter(router=router).count() > 0
    assert_daily_equals_hourly(router)


@pytest.mark.django_db(transaction=True)
def test_rebuild_rollups__daily_rows_rederived_from_hours(router):
    now = datetime.now(UTC)
    ingest(router, spread_events(400, start=now - timedelta(days=2)))
    assert rollups.rollup_events() == 400  # rebuilds read the events below the watermark
    rollups.rebuild_rollups(router_id=router.pk, since=now - timedelta(days=3))
    assert_daily_equals_hourly(router)
    total = sum(EventDailyRollup.objects.filter(router=router).values_list("requests", flat=True))
    assert total == 400
    # A partial rebuild from mid-day keeps the earlier hours and re-derives that whole day.
    Event.objects.filter(router=router, timestamp__gte=now - timedelta(hours=30)).update(cost=None)
    rollups.rebuild_rollups(router_id=router.pk, since=now - timedelta(hours=30))

    assert_daily_equals_hourly(router)
    report = savings_report(router=router, period_days=3, now=now)
    assert_matches_raw(report, raw_recount(router, now - timedelta(days=3)))
    hist_total = sum(sum(h) for h in LatencyDailyRollup.objects.values_list("hist", flat=True))
    assert hist_total == sum(sum(h) for h in LatencyRollup.objects.values_list("hist", flat=True))
    assert hist_total == 400


@pytest.mark.django_db(transaction=True)
def test_rollup__two_runs_at_once__each_event_counted_once(router):
    result = ingest(router, spread_events(200, start=datetime.now(UTC) - timedelta(hours=24)))
    assert result.accepted == 200
    results: list[int] = []

    def run() -> None:
        try:
            results.append(rollups.rollup_events())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(results) + rollups.rollup_events() == 200
    total = sum(EventRollup.objects.filter(router=router).values_list("requests", flat=True))
    assert total == 200
