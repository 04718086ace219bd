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
from tests.tracking.recount import (
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


def test_rollup__watermark_held_past_the_wait__returns_0_then_folds(router, monkeypatch):
    ingest(router, spread_events(30, start=datetime.now(UTC) - timedelta(hours=4)))
    rollups.rollup_events()  # the watermark row exists
    ingest(router, spread_events(20, start=datetime.now(UTC) - timedelta(hours=3), seed=1))
    monkeypatch.setattr(rollups, "WATERMARK_WAIT", "200ms")

    with psycopg.connect(test_database_url()) as blocker:  # as a long rebuild would
        blocker.execute("SELECT 1 FROM tracking_rollupwatermark WHERE id = 1 FOR UPDATE")
        assert rollups.rollup_events() == 0
        blocker.rollback()

    assert rollups.rollup_events() == 20


def test_outcomes_while_rollups_run__every_event_counted_once(router):
    now = datetime.now(UTC)
    events = spread_events(180, start=now - timedelta(hours=22))
    ingest(router, events)
    rollups.rollup_events()
    batches = [outcomes_for(events[i::6], seed=i) for i in range(6)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def post(batch: list[dict]) -> None:
        try:
            result = record_outcomes(router_id=router.pk, payload={"outcomes": batch})
            assert result.accepted == len(batch)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    def roll() -> None:
        try:
            while not stop.is_set():
                rollups.rollup_events()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    roller = threading.Thread(target=roll)
    roller.start()
    posters = [threading.Thread(target=post, args=(batch,)) for batch in batches]
    for thread in posters:
        thread.start()
    for thread in posters:
        thread.join()
    stop.set()
    roller.join()

    assert errors == []
    assert_report_exact(router, now, period_days=1)
    rollups.rollup_events()
    assert_report_exact(router, now, period_days=1)
    requests, cost, hist = rollup_sums(router)
    assert (requests, hist) == (180, 180)
    assert cost == pytest.approx(raw_recount(router, now - timedelta(days=1))["actual_cost"])


def wait_until_waiting(watcher, pattern: str, count: int = 1) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waiting = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE %s",
            [pattern],
        ).fetchone()[0]
        if waiting >= count:
            return
    raise AssertionError(f"nobody waiting on {pattern}")


def test_rollup_run_during_an_outcome_batch__waits_for_it__no_double_count(router, monkeypatch):
    """A run must not fold an event's old values while an outcome, which read the watermark
    before the run and so saw the event as not folded in, is about to change it."""
    rollups.rollup_events()  # the watermark row exists; the events below stay in the tail
    now = datetime.now(UTC)
    events = spread_events(10, start=now - timedelta(hours=2))
    ingest(router, events)
    target = events[0]["event_id"]
    monkeypatch.setattr(rollups, "WATERMARK_WAIT", "300ms")
    results = []

    def post() -> None:
        try:
            payload = {"outcomes": outcomes_for(events[:1])}
            results.append(record_outcomes(router_id=router.pk, payload=payload))
        finally:
            connection.close()

    with (
        psycopg.connect(test_database_url()) as blocker,
        psycopg.connect(test_database_url(), autocommit=True) as watcher,
    ):
        # Hold the event: the outcome batch has read the watermark and waits for the row.
        blocker.execute("SELECT 1 FROM tracking_event WHERE event_id = %s FOR UPDATE", [target])
        thread = threading.Thread(target=post)
        thread.start()
        wait_until_waiting(watcher, "%FROM tracking_event%FOR UPDATE%")

        assert rollups.rollup_events() == 0  # waited for the batch, gave up at WATERMARK_WAIT

        blocker.rollback()
        thread.join()
    assert results[0].accepted == 1
    assert rollups.rollup_events() == 10
    assert_report_exact(router, now, period_days=1)
    assert rollup_sums(router)[0] == 10
