"""Test helpers: ingest spread-out events and recount them from the raw rows, to compare with
the rollups and reports."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection

from tests.tracking.conftest import make_event
from tracking.ingest import record_events

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
