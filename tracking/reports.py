"""Savings reports, metrics summaries, overview stats (API and dashboard), stored daily reports.

Every report = daily rollups for the whole UTC days inside the window + hourly rollups for the
whole hours of its partial first and last day + raw events for the two partial edge hours + raw
events not yet rolled up (ingest_xid at or above the watermark). The watermark and the rollups
are read in one REPEATABLE READ snapshot, so the sum is exact. A 30-day report reads ~30 daily
rows per domain/model/tier/group key plus at most 47 hours of hourly rows, whatever the volume;
one SQL statement computes the totals and every breakdown (GROUPING SETS) and the histogram.

Conventions: money in USD; rates are fractions in [0, 1]; `savings_percent` is a percentage of
the baseline; every field is a number (0 when there is no data; `average_quality` is null then);
days are UTC. A priced event whose baseline cannot be computed counts at its own cost in
`baseline_cost` (no savings claimed, see tracking.pricing). A rolling window holds every event
from exactly `period_days` x 24 hours ago (to the microsecond; the raw events of that first
partial hour are scanned, ~7 ms at 10M events/30 days) up to now.
Domain breakdown: an event counts under its first listed domain (lower-cased), "general" when it
lists none. A model's `tier` in by_model is the tier most of its requests had. Latency
percentiles come from log-scale histograms (buckets 20 % wide), so they are estimates within
~10 %; the averages are exact. `average_quality` is the mean of the quality scores outcomes
reported (tracking.outcome_ingest), over `quality_samples` events; null when there are none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from controlplane.models import Router
from tracking.events import MAX_FUTURE
from tracking.models import LATENCY_BUCKET_RATIO, LATENCY_BUCKETS, SavingsReport
from tracking.rollups import (
    EVENT_SUMS_SQL,
    HOUR_DAY_SQL,
    LATENCY_BUCKET_SQL,
    ROLLUP_SUM_LIST,
    ROLLUP_SUMS,
)

MAX_PERIOD_DAYS = 366

_SUMS = ROLLUP_SUMS
_FLOAT_SUMS = ("cost", "baseline", "latency_sum", "quality_sum")
_SQL_TYPE = {s: "float8" if s in _FLOAT_SUMS else "bigint" for s in _SUMS}
# Raw events (edge hours and the not-yet-rolled-up tail), only the columns the report needs.
_RAW_COLUMNS = f"""
    ("timestamp" AT TIME ZONE 'UTC')::date AS day, domain, selected_model AS model,
    model_tier AS tier,
    CASE WHEN latency_ms IS NULL THEN NULL ELSE {LATENCY_BUCKET_SQL} END AS bucket,
    success, fallback_used, routing_method, cost, baseline_cost, latency_ms, prompt_tokens,
    completion_tokens, quality
"""
_HOURLY = f"""
    SELECT {HOUR_DAY_SQL} AS day, domain, model, tier, {ROLLUP_SUM_LIST}
    FROM tracking_eventrollup
    WHERE router_id = %(router)s AND hour >= {{low}} AND hour < {{high}}
"""
_HOURLY_HIST = """
    SELECT h.n, h.i FROM tracking_latencyrollup AS r, unnest(r.hist) WITH ORDINALITY AS h(n, i)
    WHERE r.router_id = %(router)s AND r.hour >= {low} AND r.hour < {high}
"""
# One scan of the raw rows yields both their sums (by day/domain/model/tier) and their latency
# bucket counts (a second grouping set); every breakdown is then one more set over the union.
_REPORT_SQL = f"""
    WITH raw AS MATERIALIZED (
        SELECT day, domain, model, tier, bucket, GROUPING(bucket) = 0 AS hist_row, {EVENT_SUMS_SQL}
        FROM (
            SELECT {_RAW_COLUMNS} FROM tracking_event
            WHERE router_id = %(router)s AND "timestamp" >= %(start)s
              AND "timestamp" < %(full_start)s
            UNION ALL
            SELECT {_RAW_COLUMNS} FROM tracking_event
            WHERE router_id = %(router)s AND "timestamp" >= %(last_edge)s
              AND "timestamp" < %(end)s
            UNION ALL
            SELECT {_RAW_COLUMNS} FROM tracking_event
            WHERE router_id = %(router)s AND ingest_xid >= %(watermark)s
              AND "timestamp" >= %(full_start)s AND "timestamp" < %(full_end)s
        ) AS e
        GROUP BY GROUPING SETS ((day, domain, model, tier), (bucket))
    ),
    src AS (
        SELECT day, domain, model, tier, {ROLLUP_SUM_LIST}
        FROM tracking_eventdailyrollup
        WHERE router_id = %(router)s AND day >= %(first_day)s AND day < %(end_day)s
        UNION ALL
        {_HOURLY.format(low="%(full_start)s", high="%(day_start)s")}
        UNION ALL
        {_HOURLY.format(low="%(day_end)s", high="%(full_end)s")}
        UNION ALL
        SELECT day, domain, model, tier, {ROLLUP_SUM_LIST} FROM raw WHERE NOT hist_row
    ),
    hist AS (
        SELECT array_agg(coalesce(s.n, 0)::bigint ORDER BY g.i) AS hist
        FROM generate_series(1, {LATENCY_BUCKETS}) AS g(i)
        LEFT JOIN (
            SELECT i, sum(n) AS n FROM (
                SELECT h.n, h.i
                FROM tracking_latencydailyrollup AS d, unnest(d.hist) WITH ORDINALITY AS h(n, i)
                WHERE d.router_id = %(router)s AND d.day >= %(first_day)s
                  AND d.day < %(end_day)s
                UNION ALL
                {_HOURLY_HIST.format(low="%(full_start)s", high="%(day_start)s")}
                UNION ALL
                {_HOURLY_HIST.format(low="%(day_end)s", high="%(full_end)s")}
                UNION ALL
                SELECT latency_count, bucket + 1 FROM raw WHERE hist_row AND bucket IS NOT NULL
            ) AS u
            GROUP BY i
        ) AS s ON s.i = g.i
    )
    SELECT GROUPING(day, domain, model, tier) AS level, day, domain, model, tier,
           {", ".join(f"coalesce(sum({s}), 0)::{_SQL_TYPE[s]}" for s in _SUMS)},
           coalesce(sum(requests) FILTER (WHERE tier = 'strong'), 0)::bigint AS strong,
           coalesce(sum(requests) FILTER (WHERE tier = 'weak'), 0)::bigint AS weak,
           (SELECT hist FROM hist) AS hist
    FROM src
    GROUP BY GROUPING SETS ((), (day), (domain), (model), (tier))
"""
_COLUMNS = ("level", "day", "domain", "model", "tier", *_SUMS, "strong", "weak", "hist")
# GROUPING(day, domain, model, tier): a bit set for each column *not* grouped on.
_TOTAL, _BY_DAY, _BY_DOMAIN, _BY_MODEL, _BY_TIER = 0b1111, 0b0111, 0b1011, 0b1101, 0b1110


@contextlib.contextmanager
def _one_snapshot() -> Iterator[None]:
    """Run the reads in one REPEATABLE READ snapshot (unless a caller's transaction is open)."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            # JIT compiling never pays off for these small reads, and a misestimate on the events
            # table could make the planner spend tens of milliseconds on it.
            cursor.execute(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off"
            )
        yield


def _watermark(cursor: Any) -> int:
    cursor.execute("SELECT xid FROM tracking_rollupwatermark WHERE id = 1")
    row = cursor.fetchone()
    return row[0] if row else 0


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _floor_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil_day(moment: datetime) -> datetime:
    floor = _floor_day(moment)
    return floor if floor == moment else floor + timedelta(days=1)


def _bounds(start: datetime, end: datetime) -> dict[str, Any]:
    """Where each part of [start, end) is read from: raw edges, hourly rows, daily rows."""
    full_start = min(_ceil_hour(start), _floor_hour(end))
    full_end = max(_floor_hour(end), full_start)
    day_start, day_end = _ceil_day(full_start), _floor_day(full_end)
    if day_start >= day_end:  # no whole day inside: hourly rows only
        day_start = day_end = full_end
    return {
        "start": start,
        "end": end,
        "full_start": full_start,
        "full_end": full_end,
        # With start and end in one hour, full_end is that hour's floor, before start.
        "last_edge": max(full_end, start),
        "day_start": day_start,
        "day_end": day_end,
        "first_day": day_start.date(),
        "end_day": day_end.date(),
    }


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def savings_fraction(figures: dict[str, Any] | None) -> float | None:
    """Savings as a fraction of the baseline, from a report's or overview's figures; None when
    there is no baseline to compare with (no priced request), rather than a misleading 0."""
    if not figures:
        return None
    baseline = figures.get("baseline_cost") or 0
    return (figures.get("estimated_savings") or 0) / baseline if baseline else None


def _percentile(hist: list[int], fraction: float) -> float:
    total = sum(hist)
    if not total:
        return 0.0
    rank = fraction * total
    seen = 0
    for index, count in enumerate(hist):
        if count and seen + count >= rank:
            upper = LATENCY_BUCKET_RATIO**index
            lower = 0.0 if index == 0 else LATENCY_BUCKET_RATIO ** (index - 1)
            return round(lower + (upper - lower) * max(0.0, rank - seen) / count, 3)
        seen += count
    return round(LATENCY_BUCKET_RATIO ** (len(hist) - 1), 3)


def _empty() -> dict[str, Any]:
    return {name: 0 for name in _SUMS} | {"strong": 0, "weak": 0}


def _metrics(acc: dict[str, Any]) -> dict[str, Any]:
    """The report numbers of one group of sums (the whole window, a day, a domain, a model)."""
    total = int(acc["requests"])
    actual = float(acc["cost"])
    baseline = float(acc["baseline"])
    savings = baseline - actual
    return {
        "total_requests": total,
        "routellm_requests": int(acc["routellm"]),
        "routellm_usage_rate": _ratio(acc["routellm"], total),
        "success_rate": _ratio(acc["successes"], total),
        "fallback_rate": _ratio(acc["fallbacks"], total),
        "actual_cost": actual,
        "baseline_cost": baseline,
        "estimated_savings": savings,
        "savings_percent": 100.0 * _ratio(savings, baseline),
        "priced_requests": int(acc["priced"]),
        "unpriced_requests": int(acc["unpriced"]),
        "strong_share": _ratio(acc["strong"], total),
        "weak_share": _ratio(acc["weak"], total),
        "average_cost": _ratio(actual, acc["priced"]),
        "average_latency_ms": _ratio(acc["latency_sum"], acc["latency_count"]),
        "prompt_tokens": int(acc["prompt_tokens"]),
        "completion_tokens": int(acc["completion_tokens"]),
        # Over the events whose outcome carried a quality score; null (not 0) when none did.
        "average_quality": (
            float(acc["quality_sum"]) / acc["quality_count"] if acc["quality_count"] else None
        ),
        "quality_samples": int(acc["quality_count"]),
    }


def _main_tier(acc: dict[str, Any]) -> str:
    other = acc["requests"] - acc["strong"] - acc["weak"]
    return max((acc["strong"], "strong"), (acc["weak"], "weak"), (other, "other"))[1]


def _rows(router_id: int, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], list]:
    """(grouped sums: the total, then one row per day / domain / model; latency histogram)."""
    params: dict[str, Any] = {"router": router_id} | _bounds(start, end)
    with _one_snapshot(), connection.cursor() as cursor:
        params["watermark"] = _watermark(cursor)
        cursor.execute(_REPORT_SQL, params)
        rows = [dict(zip(_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    hist = rows[0]["hist"] if rows else None
    return rows, list(hist or [0] * LATENCY_BUCKETS)


def report_between(
    *, router: Router, start: datetime, end: datetime, last_day: date | None = None
) -> dict[str, Any]:
    """The full savings report of events with start <= timestamp < end.

    Hour-aligned bounds read only rollups and the not-yet-rolled-up tail; other bounds also
    scan the raw events of the partial edge hours. `by_day` lists every day up to `last_day`.
    """
    rows, hist = _rows(router.pk, start, end)
    total = _empty()
    days: dict[date, dict[str, Any]] = {}
    domains: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    tiers: list[dict[str, Any]] = []
    for row in rows:
        level = row["level"]
        if level == _TOTAL:
            total = row
        elif level == _BY_DAY:
            days[row["day"]] = row
        elif level == _BY_DOMAIN:
            domains.append({"domain": row["domain"]} | _metrics(row))
        elif level == _BY_MODEL:
            models.append({"model": row["model"], "tier": _main_tier(row)} | _metrics(row))
        elif level == _BY_TIER:
            tiers.append({"tier": row["tier"]} | _metrics(row))
    day = start.astimezone(UTC).date()
    last_day = last_day or (end - timedelta(microseconds=1)).astimezone(UTC).date()
    while day <= last_day:  # every day of the window, so charts need no gap filling
        days.setdefault(day, _empty())
        day += timedelta(days=1)
    report = _metrics(total)
    report |= {
        "latency_p50_ms": _percentile(hist, 0.50),
        "latency_p95_ms": _percentile(hist, 0.95),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "by_day": [{"day": d.isoformat()} | _metrics(days[d]) for d in sorted(days)],
        "by_domain": sorted(domains, key=lambda item: (-item["total_requests"], item["domain"])),
        "by_model": sorted(models, key=lambda item: (-item["total_requests"], item["model"])),
        "by_tier": sorted(tiers, key=lambda item: (-item["total_requests"], item["tier"])),
    }
    return report


def _rolling(period_days: int, now: datetime) -> tuple[datetime, datetime]:
    """Bounds of the rolling window: exactly `period_days` x 24 hours back from now.

    The start's partial hour is read from raw events (at most one hour of them). The end is the
    end of the hour holding now + 5 minutes: no stored event can be later (ingestion refuses
    timestamps more than 5 minutes ahead), so this is "everything up to now" without a raw scan
    of the current hour.
    """
    if not 1 <= period_days <= MAX_PERIOD_DAYS:
        raise ValueError(f"period_days must be 1..{MAX_PERIOD_DAYS}")
    return now - timedelta(days=period_days), _ceil_hour(now + MAX_FUTURE)


def savings_report(
    *, router: Router, period_days: int = 7, now: datetime | None = None
) -> dict[str, Any]:
    """Savings over the last `period_days` days, with by_day / by_domain / by_model / by_tier."""
    now = now or timezone.now()
    start, end = _rolling(period_days, now)
    report = report_between(
        router=router, start=start, end=end, last_day=now.astimezone(UTC).date()
    )
    return {"router": router.slug, "period_days": period_days} | report


SUMMARY_FIELDS = (
    "total_requests",
    "routellm_requests",
    "routellm_usage_rate",
    "success_rate",
    "fallback_rate",
    "average_cost",
    "average_latency_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "strong_share",
    "actual_cost",
    "baseline_cost",
    "estimated_savings",
    "savings_percent",
    "unpriced_requests",
    "average_quality",
    "quality_samples",
)


def metrics_summary(
    *, router: Router, period_days: int = 7, now: datetime | None = None
) -> dict[str, Any]:
    """The headline metrics (the seed's get_metrics_summary keys and more), no breakdowns."""
    report = savings_report(router=router, period_days=period_days, now=now)
    return {"router": router.slug, "period_days": period_days} | {
        name: report[name] for name in SUMMARY_FIELDS
    }


_OVERVIEW_SQL = f"""
    SELECT router_id, sum(requests)::bigint, sum(successes)::bigint, sum(cost)::float8,
           sum(baseline)::float8, sum(unpriced)::bigint
    FROM (
        SELECT router_id, requests, successes, cost, baseline, unpriced
        FROM tracking_eventdailyrollup
        WHERE router_id = ANY(%(routers)s) AND day = %(day)s
        UNION ALL
        SELECT router_id, requests, successes, cost, baseline, unpriced
        FROM (
            SELECT router_id, {EVENT_SUMS_SQL}
            FROM tracking_event
            WHERE ingest_xid >= %(watermark)s AND router_id = ANY(%(routers)s)
              AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
            GROUP BY router_id
        ) AS raw
    ) s
    GROUP BY router_id
"""


def overview_stats(
    *, routers: Iterable[Router | int], day: date | None = None
) -> dict[int, dict[str, Any]]:
    """Per router id: one UTC day's (default today) requests, savings and success rate."""
    ids = [r.pk if isinstance(r, Router) else int(r) for r in routers]
    day = day or timezone.now().astimezone(UTC).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    stats = {
        pk: {
            "day": day.isoformat(),
            "total_requests": 0,
            "success_rate": 0.0,
            "actual_cost": 0.0,
            "baseline_cost": 0.0,
            "estimated_savings": 0.0,
            "unpriced_requests": 0,
        }
        for pk in ids
    }
    if not ids:
        return stats
    with _one_snapshot(), connection.cursor() as cursor:
        params = {
            "routers": ids,
            "day": day,
            "start": start,
            "end": start + timedelta(days=1),
            "watermark": _watermark(cursor),
        }
        cursor.execute(_OVERVIEW_SQL, params)
        rows = cursor.fetchall()
    for router_id, requests, successes, cost, baseline, unpriced in rows:
        stats[router_id].update(
            total_requests=int(requests),
            success_rate=_ratio(successes, requests),
            actual_cost=float(cost),
            baseline_cost=float(baseline),
            estimated_savings=float(baseline) - float(cost),
            unpriced_requests=int(unpriced),
        )
    return stats


def store_daily_report(*, router_id: int, day: date) -> SavingsReport:
    """Compute and keep the savings report of one UTC day (idempotent: one row per day)."""
    router = Router.objects.get(pk=router_id)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    data = report_between(router=router, start=start, end=start + timedelta(days=1))
    data["day"] = day.isoformat()
    report, _ = SavingsReport.objects.update_or_create(
        router=router, day=day, defaults={"data": data, "created_at": timezone.now()}
    )
    return report
