"""Hourly and daily rollups of events, and the SQL every sum of events shares.

Rollups use transaction ids, not clocks, as the watermark: each event row carries the id of the
transaction that inserted it, and the rollup job folds in exactly the rows whose id is below the
oldest transaction of this database still running. Those rows can no longer appear late, so
"rollups + rows at or above the watermark" is always the exact set of events.

An outcome (tracking.outcome_ingest) changes an event after it may have been folded in. Its
transaction holds the watermark row shared (`hold_watermark`), subtracts the old values of the
rows already folded in (`unfold_events`) and gives the rows its own transaction id, so they
re-enter the tail and the next run folds their new values. Reports, reading the watermark, the
rollups and the tail in one snapshot, see either all of that or none of it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import OperationalError, connection, transaction

from tracking.locks import LOCK_ROLLUP
from tracking.winrates import fold_winrates, rebuild_winrates, unfold_winrate_events

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
    "quality_count",
    "quality_sum",
)
ROLLUP_SUM_LIST = ", ".join(ROLLUP_SUMS)
_ADD_SUMS = ", ".join(f"{name} = r.{name} + EXCLUDED.{name}" for name in ROLLUP_SUMS)
_SUMMED = ", ".join(f"sum({name})" for name in ROLLUP_SUMS)
HOUR_DAY_SQL = "(hour AT TIME ZONE 'UTC')::date"  # the UTC day of an hourly row
# The aggregate of each ROLLUP_SUMS column over a set of events, in the same order.
_EVENT_SUMS = (
    "count(*)",
    "count(*) FILTER (WHERE success)",
    "count(*) FILTER (WHERE fallback_used)",
    "count(*) FILTER (WHERE routing_method = 'routellm')",
    "count(cost)",
    "count(*) - count(cost)",
    "coalesce(sum(cost), 0)",
    f"coalesce(sum({BASELINE_OR_COST}), 0)",
    "count(latency_ms)",
    "coalesce(sum(latency_ms), 0)",
    "coalesce(sum(prompt_tokens), 0)",
    "coalesce(sum(completion_tokens), 0)",
    "count(quality)",
    "coalesce(sum(quality), 0)",
)
# The same sums named as the columns, for reports over raw events: the one definition of what
# a rollup (and every report over raw events) counts.
EVENT_SUMS_SQL = ", ".join(
    f"{expr} AS {name}" for expr, name in zip(_EVENT_SUMS, ROLLUP_SUMS, strict=True)
)
_ROLLUP_COLUMNS = f"router_id, hour, domain, model, tier, ab_group, {ROLLUP_SUM_LIST}"


def _rollup_select(sign: int) -> str:
    """The hourly sums of the events matching `{where}`, times `sign` (-1 takes them out).

    Ordered by key, so concurrent upserts of overlapping keys lock rows in one order."""
    sums = ", ".join(f"{sign} * ({expr})" for expr in _EVENT_SUMS)
    return f"""
        SELECT router_id, date_trunc('hour', "timestamp", 'UTC'), domain, selected_model,
               model_tier, ab_group, {sums}
        FROM tracking_event
        WHERE {{where}}
        GROUP BY 1, 2, 3, 4, 5, 6
        ORDER BY 1, 2, 3, 4, 5, 6
    """


def _hist_counts(sign: int) -> str:
    return f"""
        SELECT router_id, date_trunc('hour', "timestamp", 'UTC') AS hour,
               {LATENCY_BUCKET_SQL} AS bucket, {sign} * count(*) AS n
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
        ORDER BY 1, 2
    """


_HIST_SELECT = f"WITH counts AS ({_hist_counts(1)}) {_zero_filled('counts', 'hour')}"


def _rollup_upsert(sign: int) -> str:
    """Add (sign 1) or subtract (sign -1) the events matching `{where}`: one scan of the events
    gives the hourly delta, which goes to the hourly rows and, summed per day, to the daily rows,
    so a daily row always equals its hours' sum."""
    return f"""
        WITH delta ({_ROLLUP_COLUMNS}) AS MATERIALIZED ({_rollup_select(sign)}),
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
        ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (router_id, day, domain, model, tier, ab_group) DO UPDATE SET {_ADD_SUMS}
    """


def _hist_upsert(sign: int) -> str:
    return f"""
        WITH counts AS MATERIALIZED ({_hist_counts(sign)}),
        day_counts AS MATERIALIZED (
            SELECT router_id, {HOUR_DAY_SQL} AS day, bucket, sum(n) AS n
            FROM counts GROUP BY 1, 2, 3
        ),
        hourly AS (
            INSERT INTO tracking_latencyrollup AS r (router_id, hour, hist)
            {_zero_filled("counts", "hour")}
            ON CONFLICT (router_id, hour) DO UPDATE
            SET hist = tracking_hist_merge(r.hist, EXCLUDED.hist)
        )
        INSERT INTO tracking_latencydailyrollup AS r (router_id, day, hist)
        {_zero_filled("day_counts", "day")}
        ON CONFLICT (router_id, day) DO UPDATE
        SET hist = tracking_hist_merge(r.hist, EXCLUDED.hist)
    """


_FOLD, _FOLD_HIST = _rollup_upsert(1), _hist_upsert(1)
_UNFOLD, _UNFOLD_HIST = _rollup_upsert(-1), _hist_upsert(-1)
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

# --- Per-revision hourly rollup (tracking_revisionrollup, read by tracking.revision_report) ---
REVISION_SUMS = (
    "requests",
    "successes",
    "fallbacks",
    "strong",
    "priced",
    "unpriced",
    "cost",
    "baseline",
)
_REVISION_SUM_LIST = ", ".join(REVISION_SUMS)
# The per-revision sums of a group of tracking_event rows, in the order of REVISION_SUMS.
_REVISION_EXPRS = (
    "count(*)",
    "count(*) FILTER (WHERE success)",
    "count(*) FILTER (WHERE fallback_used)",
    "count(*) FILTER (WHERE model_tier = 'strong')",
    "count(cost)",
    "count(*) - count(cost)",
    "coalesce(sum(cost), 0)",
    f"coalesce(sum({BASELINE_OR_COST}), 0)",
)
REVISION_EVENT_SUMS_SQL = ", ".join(_REVISION_EXPRS)
_REVISION_ADD = ", ".join(f"{name} = r.{name} + EXCLUDED.{name}" for name in REVISION_SUMS)


def _revision_select(sign: int) -> str:
    sums = ", ".join(f"{sign} * ({expr})" for expr in _REVISION_EXPRS)
    return f"""
        SELECT router_id, date_trunc('hour', "timestamp", 'UTC'), coalesce(revision, 0), {sums}
        FROM tracking_event WHERE {{where}}
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
    """


_REVISION_INSERT = (
    f"INSERT INTO tracking_revisionrollup AS r (router_id, hour, revision, {_REVISION_SUM_LIST})"
)


def _revision_upsert(sign: int) -> str:
    """Add (1) or take out (-1) the events matching `{where}`, like _rollup_upsert."""
    return f"""
        {_REVISION_INSERT} {_revision_select(sign)}
        ON CONFLICT (router_id, hour, revision) DO UPDATE SET {_REVISION_ADD}
    """


# Folded by rollup_events with its xid range (`where`), in its transaction; taken out again by
# unfold_events when an outcome changes a rolled-up event.
REVISION_ROLLUP_UPSERT, _REVISION_UNFOLD = _revision_upsert(1), _revision_upsert(-1)
# Rebuilt from the events by rebuild_rollups (after re-pricing).
REVISION_ROLLUP_REBUILD = f"{_REVISION_INSERT} {_revision_select(1)}"


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


def _lock_watermark(cursor: Any, *, mode: str = "UPDATE") -> int:
    cursor.execute(
        "INSERT INTO tracking_rollupwatermark (id, xid, updated_at) VALUES (1, 0, now()) "
        "ON CONFLICT (id) DO NOTHING"
    )
    cursor.execute(f"SELECT xid FROM tracking_rollupwatermark WHERE id = 1 FOR {mode}")
    return cursor.fetchone()[0]


def hold_watermark(cursor: Any) -> int:
    """Lock the watermark shared until the caller's transaction ends; returns it.

    For writers that change events which may already be folded in (outcomes): rollup runs and
    rebuilds wait for them, so "below the watermark" means "in the rollups" until they commit.
    """
    return _lock_watermark(cursor, mode="SHARE")


def unfold_events(cursor: Any, *, router_id: int, event_ids: list[Any]) -> None:
    """Take these events' current values out of the rollups (inside the caller's transaction,
    which holds the watermark, before it changes them and moves them to the tail)."""
    if event_ids:
        params = {"router": router_id, "ids": event_ids}
        where = "router_id = %(router)s AND event_id = ANY(%(ids)s::uuid[])"
        cursor.execute(_UNFOLD.format(where=where), params)
        cursor.execute(_UNFOLD_HIST.format(where=where), params)
        cursor.execute(_REVISION_UNFOLD.format(where=where), params)
        unfold_winrate_events(cursor, router_id=router_id, event_ids=event_ids)


# How long a rollup run waits for the watermark: outcome batches hold it for milliseconds, a
# rebuild for as long as it takes. Past this the run gives up; the next beat tick tries again.
WATERMARK_WAIT = "5s"


def rollup_events() -> int:
    """Fold every finished event below the new watermark into the hourly and daily rollups;
    returns the number of events folded.

    Safe to run twice at once: the second run finds the advisory lock taken and returns 0. A
    run waits for outcome writes holding the watermark shared, up to WATERMARK_WAIT (then 0).
    """
    try:
        return _rollup_events()
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":  # lock_not_available
            return 0
        raise


def _rollup_events() -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_ROLLUP])
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(f"SET LOCAL lock_timeout = '{WATERMARK_WAIT}'")
        low = _lock_watermark(cursor)
        cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
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
            cursor.execute(_FOLD.format(where=_XID_RANGE), params)
            cursor.execute(_FOLD_HIST.format(where=_XID_RANGE), params)
            cursor.execute(REVISION_ROLLUP_UPSERT.format(where=_XID_RANGE), params)
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
        watermark = _lock_watermark(cursor)
        for table in ("tracking_eventrollup", "tracking_latencyrollup", "tracking_revisionrollup"):
            cursor.execute(
                f"DELETE FROM {table} WHERE router_id = %s AND hour >= %s", [router_id, hour]
            )
        where = 'router_id = %(router)s AND "timestamp" >= %(hour)s AND ingest_xid < %(wm)s'
        params = {"router": router_id, "hour": hour, "wm": watermark, "day_start": day_start}
        cursor.execute(
            f"INSERT INTO tracking_eventrollup ({_ROLLUP_COLUMNS}) "
            + _rollup_select(1).format(where=where),
            params,
        )
        cursor.execute(
            "INSERT INTO tracking_latencyrollup (router_id, hour, hist) "
            + _HIST_SELECT.format(where=where),
            params,
        )
        cursor.execute(REVISION_ROLLUP_REBUILD.format(where=where), params)
        for table in ("tracking_eventdailyrollup", "tracking_latencydailyrollup"):
            cursor.execute(
                f"DELETE FROM {table} WHERE router_id = %s AND day >= %s",
                [router_id, day_start.date()],
            )
        cursor.execute(_DAILY_FROM_HOURLY, params)
        cursor.execute(_LATENCY_DAILY_FROM_HOURLY, params)
        # Win-rate histogram (calibration, what-if): daily rows, so from `since`'s day on.
        rebuild_winrates(cursor, router_id=router_id, day=day_start.date(), watermark=watermark)
