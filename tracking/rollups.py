"""Hourly and daily rollups of events, and the SQL every sum of events shares.

Rollups use transaction ids, not clocks, as the watermark: each event row carries the id of the
transaction that inserted it, and the rollup job folds in exactly the rows whose id is below the
oldest transaction of this database still running. Those rows can no longer appear late, so
"rollups + rows at or above the watermark" is always the exact set of events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction

from tracking.winrates import fold_winrates, rebuild_winrates

# Latency bucket of a row, the same rule as the SQL aggregate tracking_latency_hist.
LATENCY_BUCKET_SQL = "least(63, greatest(0, ceil(ln(greatest(latency_ms, 1.0)) / ln(1.2))))::int"
# A priced event whose baseline cannot be computed (tracking.pricing) counts at its own cost in
# the baseline sum: no savings claimed, and no loss either. Used by every sum of baselines.
BASELINE_OR_COST = "coalesce(baseline_cost, cost)"
# The summed columns of EventRollup / EventDailyRollup, in table order.
ROLLUP_SUMS = (
    "requests",
    "successes",
    "fallbacks",
    "routellm",
    "priced",
    "unpriced",
    "cost",
    "baseline",
    "latency_count",
    "latency_sum",
    "prompt_tokens",
    "completion_tokens",
)
# The sums of ROLLUP_SUMS over a group of tracking_event rows, named and ordered as the columns:
# the one definition of what a rollup (and every report over raw events) counts.
EVENT_SUMS_SQL = f"""
    count(*) AS requests, count(*) FILTER (WHERE success) AS successes,
    count(*) FILTER (WHERE fallback_used) AS fallbacks,
    count(*) FILTER (WHERE routing_method = 'routellm') AS routellm,
    count(cost) AS priced, count(*) - count(cost) AS unpriced,
    coalesce(sum(cost), 0) AS cost, coalesce(sum({BASELINE_OR_COST}), 0) AS baseline,
    count(latency_ms) AS latency_count, coalesce(sum(latency_ms), 0) AS latency_sum,
    coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
    coalesce(sum(completion_tokens), 0) AS completion_tokens
"""
ROLLUP_SUM_LIST = ", ".join(ROLLUP_SUMS)
_ADD_SUMS = ", ".join(f"{name} = r.{name} + EXCLUDED.{name}" for name in ROLLUP_SUMS)
_SUMMED = ", ".join(f"sum({name})" for name in ROLLUP_SUMS)
HOUR_DAY_SQL = "(hour AT TIME ZONE 'UTC')::date"  # the UTC day of an hourly row
_ROLLUP_SELECT = f"""
    SELECT router_id, date_trunc('hour', "timestamp", 'UTC'), domain, selected_model,
           model_tier, ab_group,
           {EVENT_SUMS_SQL}
    FROM tracking_event
    WHERE {{where}}
    GROUP BY 1, 2, 3, 4, 5, 6
"""
_ROLLUP_COLUMNS = f"router_id, hour, domain, model, tier, ab_group, {ROLLUP_SUM_LIST}"
_HIST_COUNTS = f"""
    SELECT router_id, date_trunc('hour', "timestamp", 'UTC') AS hour,
           {LATENCY_BUCKET_SQL} AS bucket, count(*) AS n
    FROM tracking_event
    WHERE latency_ms IS NOT NULL AND {{where}}
    GROUP BY 1, 2, 3
"""


def _zero_filled(counts: str, key: str) -> str:
    """Histograms (64 buckets, zero-filled) from a relation of (router_id, key, bucket, n): plain
    GROUP BY, no per-row function."""
    return f"""
        SELECT k.router_id, k.{key}, array_agg(coalesce(c.n, 0)::bigint ORDER BY g.i)
        FROM (SELECT DISTINCT router_id, {key} FROM {counts}) AS k
        CROSS JOIN generate_series(0, 63) AS g(i)
        LEFT JOIN {counts} AS c
            ON c.router_id = k.router_id AND c.{key} = k.{key} AND c.bucket = g.i
        GROUP BY 1, 2
    """


_HIST_SELECT = f"WITH counts AS ({_HIST_COUNTS}) {_zero_filled('counts', 'hour')}"
# Incremental fold: one scan of the events gives the hourly delta, which is added to the hourly
# rows and, summed per day, to the daily rows, so a daily row always equals its hours' sum.
_ROLLUP_UPSERT = f"""
    WITH delta ({_ROLLUP_COLUMNS}) AS MATERIALIZED ({_ROLLUP_SELECT}),
    hourly AS (
        INSERT INTO tracking_eventrollup AS r ({_ROLLUP_COLUMNS})
        SELECT * FROM delta
        ON CONFLICT (router_id, hour, domain, model, tier, ab_group) DO UPDATE SET {_ADD_SUMS}
    )
    INSERT INTO tracking_eventdailyrollup AS r (
        router_id, day, domain, model, tier, ab_group, {ROLLUP_SUM_LIST})
    SELECT router_id, {HOUR_DAY_SQL}, domain, model, tier, ab_group, {_SUMMED}
    FROM delta
    GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (router_id, day, domain, model, tier, ab_group) DO UPDATE SET {_ADD_SUMS}
"""
_HIST_UPSERT = f"""
    WITH counts AS MATERIALIZED ({_HIST_COUNTS}),
    day_counts AS MATERIALIZED (
        SELECT router_id, {HOUR_DAY_SQL} AS day, bucket, sum(n) AS n FROM counts GROUP BY 1, 2, 3
    ),
    hourly AS (
        INSERT INTO tracking_latencyrollup AS r (router_id, hour, hist)
        {_zero_filled("counts", "hour")}
        ON CONFLICT (router_id, hour) DO UPDATE
        SET hist = tracking_hist_merge(r.hist, EXCLUDED.hist)
    )
    INSERT INTO tracking_latencydailyrollup AS r (router_id, day, hist)
    {_zero_filled("day_counts", "day")}
    ON CONFLICT (router_id, day) DO UPDATE SET hist = tracking_hist_merge(r.hist, EXCLUDED.hist)
"""
# Daily rows re-derived from the hourly rows (after a rebuild of those hours).
_DAILY_FROM_HOURLY = f"""
    INSERT INTO tracking_eventdailyrollup (
        router_id, day, domain, model, tier, ab_group, {ROLLUP_SUM_LIST})
    SELECT router_id, {HOUR_DAY_SQL}, domain, model, tier, ab_group, {_SUMMED}
    FROM tracking_eventrollup
    WHERE router_id = %(router)s AND hour >= %(day_start)s
    GROUP BY 1, 2, 3, 4, 5, 6
"""
_LATENCY_DAILY_FROM_HOURLY = f"""
    INSERT INTO tracking_latencydailyrollup (router_id, day, hist)
    SELECT router_id, {HOUR_DAY_SQL}, tracking_hist_sum(hist)
    FROM tracking_latencyrollup
    WHERE router_id = %(router)s AND hour >= %(day_start)s
    GROUP BY 1, 2
"""
_XID_RANGE = "ingest_xid >= %(low)s AND ingest_xid < %(high)s"


# The new watermark: the oldest transaction of *this database* still running (xids are
# cluster-wide, so pg_snapshot_xmin alone would wait for every other database's transactions),
# or the snapshot's xmax. Transactions that finish between the snapshot and the activity read
# have committed, so the statements that follow see their rows.
_SAFE_XID = """
    WITH s AS (SELECT pg_current_snapshot() AS snap)
    SELECT least(
        pg_snapshot_xmax(snap)::text::bigint,
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(snap) AS x
         WHERE x::text::bigint % 4294967296 IN (
             SELECT backend_xid::text::bigint FROM pg_stat_activity
             WHERE datname = current_database() AND backend_xid IS NOT NULL)))
    FROM s
"""


def _lock_watermark(cursor: Any, *, wait: bool) -> int | None:
    cursor.execute(
        "INSERT INTO tracking_rollupwatermark (id, xid, updated_at) VALUES (1, 0, now()) "
        "ON CONFLICT (id) DO NOTHING"
    )
    suffix = "FOR UPDATE" if wait else "FOR UPDATE SKIP LOCKED"
    cursor.execute(f"SELECT xid FROM tracking_rollupwatermark WHERE id = 1 {suffix}")
    row = cursor.fetchone()
    return None if row is None else row[0]


def rollup_events() -> int:
    """Fold every finished event below the new watermark into the hourly and daily rollups;
    returns the number of events folded.

    Safe to run twice at once: the second run finds the watermark row locked and returns 0.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        low = _lock_watermark(cursor, wait=False)
        if low is None:
            return 0
        cursor.execute(_SAFE_XID)
        high = cursor.fetchone()[0]
        if high <= low:
            return 0
        cursor.execute(
            "SELECT count(*) FROM tracking_event WHERE ingest_xid >= %s AND ingest_xid < %s",
            [low, high],
        )
        folded = cursor.fetchone()[0]
        if folded:
            params = {"low": low, "high": high}
            cursor.execute(_ROLLUP_UPSERT.format(where=_XID_RANGE), params)
            cursor.execute(_HIST_UPSERT.format(where=_XID_RANGE), params)
            # Win-rate histogram (calibration, what-if): its own statement, same xid range.
            fold_winrates(cursor, where=_XID_RANGE, params=params)
        cursor.execute(
            "UPDATE tracking_rollupwatermark SET xid = %s, updated_at = now() WHERE id = 1",
            [high],
        )
    return folded


def rebuild_rollups(*, router_id: int, since: datetime) -> None:
    """Recompute a router's rollups from `since`'s hour on, from the events themselves.

    Daily rows are then re-derived from the hourly rows of every day from `since`'s day on.
    """
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    day_start = hour.replace(hour=0)
    with transaction.atomic(), connection.cursor() as cursor:
        watermark = _lock_watermark(cursor, wait=True)
        for table in ("tracking_eventrollup", "tracking_latencyrollup"):
            cursor.execute(
                f"DELETE FROM {table} WHERE router_id = %s AND hour >= %s", [router_id, hour]
            )
        where = 'router_id = %(router)s AND "timestamp" >= %(hour)s AND ingest_xid < %(wm)s'
        params = {"router": router_id, "hour": hour, "wm": watermark, "day_start": day_start}
        cursor.execute(
            f"INSERT INTO tracking_eventrollup ({_ROLLUP_COLUMNS}) "
            + _ROLLUP_SELECT.format(where=where),
            params,
        )
        cursor.execute(
            "INSERT INTO tracking_latencyrollup (router_id, hour, hist) "
            + _HIST_SELECT.format(where=where),
            params,
        )
        for table in ("tracking_eventdailyrollup", "tracking_latencydailyrollup"):
            cursor.execute(
                f"DELETE FROM {table} WHERE router_id = %s AND day >= %s",
                [router_id, day_start.date()],
            )
        cursor.execute(_DAILY_FROM_HOURLY, params)
        cursor.execute(_LATENCY_DAILY_FROM_HOURLY, params)
        # Win-rate histogram (calibration, what-if): daily rows, so from `since`'s day on.
        rebuild_winrates(cursor, router_id=router_id, day=day_start.date(), watermark=watermark)
