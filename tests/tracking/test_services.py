"""Rollups (with the watermark), re-pricing, retention and stored daily reports."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F

from controlplane.services import update_config
from tests.tracking.conftest import make_event
from tracking import reports, repricing, retention, rollups
from tracking.ingest import record_events
from tracking.models import (
    Event,
    EventDailyRollup,
    EventRollup,
    LatencyDailyRollup,
    LatencyRollup,
    ModelPrice,
    SavingsReport,
)
from tracking.reports import report_between, savings_report

SUMMED = ("total_requests", "routellm_requests", "unpriced_requests", "priced_requests")


def ingest(router, events):
    return record_events(router_id=router.pk, payload={"events": events})


def spread_events(count: int, *, start: datetime, seed: int = 0) -> list[dict]:
    models = ["gpt-3.5-turbo", "gpt-4-1106-preview", "mystery"]
    return [
        make_event(
            timestamp=start + timedelta(minutes=7 * i),
            selected_model=models[(i + seed) % 3],
            routing_method="routellm" if i % 2 else "domain",
            prompt_tokens=100 + i,
            completion_tokens=50,
            latency_ms=10 + i % 400,
            success=i % 11 != 0,
            domains=[["technical"], ["legal"], []][i % 3],
            ab_group="a" if i % 4 else "b",
        )
        for i in range(count)
    ]


def raw_recount(router, start: datetime) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*), count(*) FILTER (WHERE routing_method = 'routellm'),
                   count(*) - count(cost), count(cost), coalesce(sum(cost), 0),
                   coalesce(sum(baseline_cost), 0), count(*) FILTER (WHERE success)
            FROM tracking_event WHERE router_id = %s AND "timestamp" >= %s
            """,
            [router.pk, start],
        )
        row = cursor.fetchone()
    return dict(zip([*SUMMED, "actual_cost", "baseline_cost", "successes"], row, strict=True))


def assert_matches_raw(report: dict, raw: dict) -> None:
    for key in SUMMED:
        assert report[key] == raw[key], key
    assert report["actual_cost"] == pytest.approx(raw["actual_cost"], rel=1e-9)
    assert report["baseline_cost"] == pytest.approx(raw["baseline_cost"], rel=1e-9)
    assert report["success_rate"] == pytest.approx(raw["successes"] / raw["total_requests"])


def raw_breakdowns(router, start: datetime, end: datetime) -> dict:
    """{(kind, key): (requests, cost, latency_sum)} recounted from the events themselves."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT GROUPING(day, domain, selected_model), day, domain, selected_model,
                   count(*), coalesce(sum(cost), 0), coalesce(sum(latency_ms), 0)
            FROM (SELECT ("timestamp" AT TIME ZONE 'UTC')::date AS day, * FROM tracking_event
                  WHERE router_id = %s AND "timestamp" >= %s AND "timestamp" < %s) e
            GROUP BY GROUPING SETS ((day), (domain), (selected_model))
            """,
            [router.pk, start, end],
        )
        rows = cursor.fetchall()
    kinds = {3: "day", 5: "domain", 6: "model"}
    out = {}
    for level, day, domain, model, requests, cost, latency in rows:
        key = {"day": day and day.isoformat(), "domain": domain, "model": model}[kinds[level]]
        out[(kinds[level], key)] = (requests, cost, latency)
    return out


def assert_breakdowns_match_raw(report: dict, raw: dict) -> None:
    got = {}
    for kind, items in (("day", "by_day"), ("domain", "by_domain"), ("model", "by_model")):
        for item in report[items]:
            if item["total_requests"]:
                latency = item["average_latency_ms"] * item["total_requests"]
                got[(kind, item[kind])] = (item["total_requests"], item["actual_cost"], latency)
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in raw.items()}
    for key, (_, cost, latency) in raw.items():
        assert got[key][1] == pytest.approx(cost, rel=1e-9), key
        # Every spread event has a latency, so average x requests is the latency sum.
        assert got[key][2] == pytest.approx(latency, rel=1e-9), key


def assert_daily_equals_hourly(router) -> None:
    """Each daily rollup row is the sum of its day's hourly rows (sums and histograms)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM (
                SELECT (hour AT TIME ZONE 'UTC')::date AS day, domain, model, tier, ab_group,
                       sum(requests)::bigint AS requests, sum(cost) AS cost,
                       sum(latency_count)::bigint AS latency_count
                FROM tracking_eventrollup WHERE router_id = %(r)s GROUP BY 1, 2, 3, 4, 5
            ) h FULL JOIN (
                SELECT day, domain, model, tier, ab_group, requests, cost, latency_count
                FROM tracking_eventdailyrollup WHERE router_id = %(r)s
            ) d USING (day, domain, model, tier, ab_group)
            WHERE h.requests IS DISTINCT FROM d.requests
               OR abs(h.cost - d.cost) > 1e-9 OR h.cost IS NULL OR d.cost IS NULL
               OR h.latency_count IS DISTINCT FROM d.latency_count
            """,
            {"r": router.pk},
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            """
            SELECT count(*) FROM (
                SELECT (hour AT TIME ZONE 'UTC')::date AS day, tracking_hist_sum(hist) AS hist
                FROM tracking_latencyrollup WHERE router_id = %(r)s GROUP BY 1
            ) h FULL JOIN (
                SELECT day, hist FROM tracking_latencydailyrollup WHERE router_id = %(r)s
            ) d USING (day)
            WHERE h.hist IS DISTINCT FROM d.hist
            """,
            {"r": router.pk},
        )
        assert cursor.fetchone()[0] == 0


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


@pytest.mark.django_db
def test_price_change__reprices_affected_events(router):
    at = datetime.now(UTC) - timedelta(hours=2)
    # Both token counts: with one missing the event is priced only by its estimate (none here).
    tokens = dict(prompt_tokens=1_000_000, completion_tokens=0)
    ingest(router, [make_event(timestamp=at, selected_model="acme-1", **tokens)])
    assert savings_report(router=router)["unpriced_requests"] == 1

    repricing.set_model_price(
        model="acme-*",
        input_per_token=Decimal("0.000001"),
        output_per_token=Decimal("0.000002"),
        effective_from=at - timedelta(days=1),
    )
    repricing.apply_price_changes()

    report = savings_report(router=router)
    assert report["unpriced_requests"] == 0
    assert report["actual_cost"] == pytest.approx(1.0)
    assert report["baseline_cost"] == pytest.approx(10.0)  # 1M prompt tokens at gpt-4-1106


@pytest.mark.django_db
def test_price_change__only_since_effective_from(router):
    old = datetime.now(UTC) - timedelta(days=3)
    new = datetime.now(UTC) - timedelta(hours=1)
    tokens = dict(selected_model="gpt-3.5-turbo", prompt_tokens=1_000_000, completion_tokens=0)
    ingest(router, [make_event(timestamp=old, **tokens), make_event(timestamp=new, **tokens)])

    repricing.set_model_price(
        model="gpt-3.5-turbo",
        input_per_token=Decimal("0.000003"),
        output_per_token=Decimal("0.000004"),
        effective_from=new - timedelta(hours=1),
    )
    repricing.apply_price_changes()

    costs = dict(Event.objects.filter(router=router).values_list("timestamp", "cost"))
    assert sorted(costs.values()) == [pytest.approx(0.5), pytest.approx(3.0)]


@pytest.mark.django_db(transaction=True)
def test_retention__removes_only_old_events(router, actor):
    update_config(router=router, changes={"metrics_retention_days": 10}, actor=actor)
    now = datetime.now(UTC)
    old = [make_event(timestamp=now - timedelta(days=11, hours=i)) for i in range(5)]
    kept = [make_event(timestamp=now - timedelta(days=9)), make_event(timestamp=now)]
    ingest(router, old + kept)
    assert rollups.rollup_events() == 7
    assert EventRollup.objects.filter(router=router, hour__lt=now - timedelta(days=10)).exists()

    assert retention.purge_expired_events(router_id=router.pk, now=now) == 5

    left = {str(e) for e in Event.objects.filter(router=router).values_list("event_id", flat=True)}
    assert left == {e["event_id"] for e in kept}
    assert not EventRollup.objects.filter(router=router, hour__lt=now - timedelta(days=10, hours=1))
    # Daily rows go once their whole day is older than the cutoff; the cutoff's day stays.
    cutoff_day = (now - timedelta(days=10)).date()
    days = set(EventDailyRollup.objects.filter(router=router).values_list("day", flat=True))
    assert days and min(days) == (now - timedelta(days=9)).date()
    assert not EventDailyRollup.objects.filter(router=router, day__lt=cutoff_day).exists()
    assert not LatencyDailyRollup.objects.filter(router=router, day__lt=cutoff_day).exists()


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


@pytest.mark.django_db
def test_record_events__decoded_payload_without_raw_body__nul_rejected(router):
    # Callers without the raw bytes (seed_demo, benches) always get the per-event scan.
    events = [make_event(), make_event(ab_group="b\u0000"), make_event()]

    result = ingest(router, events)

    assert (result.accepted, [item["index"] for item in result.rejected]) == (2, [1])
    assert result.rejected[0]["errors"].keys() == {"ab_group"}


@pytest.mark.django_db
def test_apply_price_changes__row_edited_during_the_run__stays_pending(router, monkeypatch):
    at = datetime.now(UTC) - timedelta(hours=2)
    tokens = dict(prompt_tokens=1_000_000, completion_tokens=0)
    ingest(router, [make_event(timestamp=at, selected_model="acme-1", **tokens)])
    price = dict(model="acme-*", output_per_token=Decimal(0), effective_from=at - timedelta(days=1))
    repricing.set_model_price(input_per_token=Decimal("0.000001"), **price)
    reprice = repricing.reprice_events

    def edited_meanwhile(**kwargs):
        # An operator corrects the price while the run is re-pricing with the value it read.
        repricing.set_model_price(input_per_token=Decimal("0.000002"), **price)
        return reprice(**kwargs)

    monkeypatch.setattr(repricing, "reprice_events", edited_meanwhile)
    repricing.apply_price_changes()
    monkeypatch.setattr(repricing, "reprice_events", reprice)

    assert ModelPrice.objects.get(model="acme-*").applied_at is None
    assert Event.objects.get(router=router).cost == pytest.approx(1.0)
    repricing.apply_price_changes()  # the next run applies the edit
    assert ModelPrice.objects.get(model="acme-*").applied_at is not None
    assert Event.objects.get(router=router).cost == pytest.approx(2.0)


@pytest.mark.django_db(transaction=True)
def test_retention__two_purges_at_once__second_skips(router, actor, monkeypatch):
    update_config(router=router, changes={"metrics_retention_days": 10}, actor=actor)
    now = datetime.now(UTC)
    ingest(router, [make_event(timestamp=now - timedelta(days=11, hours=i)) for i in range(5)])
    first_inside, release = threading.Event(), threading.Event()
    retention_days = retention.retention_days

    def slow_first(router):
        # The first purge pauses inside (holding its lock) until the second one has finished.
        if not first_inside.is_set():
            first_inside.set()
            release.wait(10)
        return retention_days(router)

    monkeypatch.setattr(retention, "retention_days", slow_first)
    results: dict[str, int] = {}

    def purge(name: str) -> None:
        try:
            results[name] = retention.purge_expired_events(router_id=router.pk, now=now)
        finally:
            connection.close()

    first = threading.Thread(target=purge, args=("first",))
    first.start()
    assert first_inside.wait(10)
    second = threading.Thread(target=purge, args=("second",))
    second.start()
    second.join(10)
    release.set()
    first.join(10)

    assert results == {"first": 5, "second": 0}
    assert not Event.objects.filter(router=router).exists()
    # The lock is released: a later purge runs (and finds nothing left).
    assert retention.purge_expired_events(router_id=router.pk, now=now) == 0
