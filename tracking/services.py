"""Tracking writes: event ingestion, pricing, rollups, retention, stored reports.

Ingestion is the hot path: validate with msgspec, price in Python from one price query, COPY
the batch into a per-connection temp table, then one INSERT … SELECT … ON CONFLICT DO NOTHING.
The row count of that INSERT is the number accepted; everything else valid was a duplicate
(a retried batch, or the same event_id twice in one batch).

Rollups use transaction ids, not clocks, as the watermark: each event row carries the id of the
transaction that inserted it, and the rollup job folds in exactly the rows whose id is below the
oldest transaction of this database still running. Those rows can no longer appear late, so
"rollups + rows at or above the watermark" is always the exact set of events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from controlplane.models import Router, RouterClient
from tracking.events import (
    MAX_ERROR_LENGTH,
    EventIn,
    may_hold_nul,
    primary_domain,
    validate_batch,
)
from tracking.models import ModelPrice, SavingsReport
from tracking.pricing import PriceBook, PriceRow, price_event

log = logging.getLogger(__name__)

STAGE_TABLE = "tracking_event_stage"
EVENT_COLUMNS = (
    "router_id",
    "event_id",
    "timestamp",
    "revision",
    "domains",
    "domain",
    "routing_method",
    "selected_model",
    "model_tier",
    "strong_win_rate",
    "threshold",
    "prompt_tokens",
    "completion_tokens",
    "estimated_cost",
    "cost",
    "baseline_cost",
    "latency_ms",
    "success",
    "fallback_used",
    "error",
    "text_sha256",
    "text_length",
    "ab_group",
)
_COLUMN_LIST = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} ON COMMIT DELETE ROWS AS "
    f"SELECT {_COLUMN_LIST} FROM tracking_event WITH NO DATA"
)
_INSERT_FROM_STAGE = f"""
    INSERT INTO tracking_event ({_COLUMN_LIST}, received_at, ingest_xid)
    SELECT {_COLUMN_LIST}, now(), (SELECT pg_current_xact_id()::text::bigint)
    FROM {STAGE_TABLE}
    ON CONFLICT (router_id, event_id) DO NOTHING
"""

# Session advisory-lock keys: one long job of each kind at a time, across all workers
# (LOCK_RETENTION with the router id as a second key: one purge per router).
LOCK_REPRICE = 0x7270_0001
LOCK_RETENTION = 0x7270_0002


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


# --- Prices ----------------------------------------------------------------------------------


def price_book() -> PriceBook:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model, input_per_token, output_per_token, effective_from "
            "FROM tracking_modelprice"
        )
        return PriceBook(cursor.fetchall())


def _queue(task_name: str, *args: Any) -> None:
    """Queue a Celery task after commit; a broker outage only delays it (beat retries)."""

    def send() -> None:
        try:
            from tracking import tasks

            getattr(tasks, task_name).delay(*args)
        except Exception as exc:  # Redis down: the periodic job picks the work up later
            log.warning("could not queue %s: %s", task_name, exc)

    transaction.on_commit(send)


@transaction.atomic
def set_model_price(
    *,
    model: str,
    input_per_token: Decimal,
    output_per_token: Decimal,
    effective_from: datetime,
    source: str = "",
    reprice: bool = True,
) -> ModelPrice:
    """Add or change one price; events since effective_from are re-priced by a task.

    Storing the values a row already has changes nothing (re-importing a price file must not
    re-price every event since the file's date).
    """
    same = ModelPrice.objects.filter(
        model=model,
        effective_from=effective_from,
        input_per_token=input_per_token,
        output_per_token=output_per_token,
    ).first()
    if same is not None and reprice:
        if same.source != source:
            same.source = source
            same.save(update_fields=["source"])
        return same
    price, _ = ModelPrice.objects.update_or_create(
        model=model,
        effective_from=effective_from,
        defaults={
            "input_per_token": input_per_token,
            "output_per_token": output_per_token,
            "source": source,
            "applied_at": None if reprice else timezone.now(),
        },
    )
    if reprice:
        _queue("apply_price_changes")
    return price


def import_prices(*, rows: Iterable[PriceRow], reprice: bool = True) -> int:
    count = 0
    with transaction.atomic():
        for row in rows:
            set_model_price(
                model=row.model,
                input_per_token=row.input_per_token,
                output_per_token=row.output_per_token,
                effective_from=row.effective_from,
                source=row.source,
                reprice=reprice,
            )
            count += 1
    return count


# --- Ingestion -------------------------------------------------------------------------------


def _revision_models(router_id: int, numbers: set[int]) -> tuple[tuple[str, str], dict]:
    """(current (strong, weak), {revision number: (strong, weak)}) in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT r.number, r.config->>'strong_model', r.config->>'weak_model',
                   r.id = ro.current_revision_id
            FROM controlplane_router ro
            JOIN controlplane_configrevision r ON r.router_id = ro.id
            WHERE ro.id = %s AND (r.id = ro.current_revision_id OR r.number = ANY(%s))
            """,
            [router_id, list(numbers)],
        )
        rows = cursor.fetchall()
    by_number = {number: (strong or "", weak or "") for number, strong, weak, _ in rows}
    current = next(((s or "", w or "") for _, s, w, is_current in rows if is_current), ("", ""))
    return current, by_number


def _infer_tier(model: str, strong: str, weak: str) -> str:
    if model == strong:
        return "strong"
    if model == weak:
        return "weak"
    return "other"


def _event_row(
    router_id: int, event: EventIn, models: tuple[str, str], book: PriceBook
) -> tuple[Any, ...]:
    strong, weak = models
    cost, baseline = price_event(
        book,
        model=event.selected_model,
        strong_model=strong or None,
        at=event.timestamp,
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        estimated_cost=event.estimated_cost,
    )
    return (
        router_id,
        event.event_id,
        event.timestamp,
        event.revision,
        event.domains or [],
        primary_domain(event.domains),
        event.routing_method or "",
        event.selected_model,
        event.model_tier or _infer_tier(event.selected_model, strong, weak),
        event.strong_win_rate,
        event.threshold,
        event.prompt_tokens,
        event.completion_tokens,
        event.estimated_cost,
        cost,
        baseline,
        event.latency_ms,
        True if event.success is None else event.success,
        bool(event.fallback_used),
        (event.error or "")[:MAX_ERROR_LENGTH],
        (event.text_sha256 or "").lower(),
        event.text_length,
        event.ab_group or "",
    )


def ingest_events(*, router_id: int, events: list[EventIn]) -> tuple[int, int]:
    """Store valid events at most once each; returns (accepted, duplicates)."""
    if not events:
        return 0, 0
    current, by_number = _revision_models(
        router_id, {e.revision for e in events if e.revision is not None}
    )
    book = price_book()
    rows = [
        _event_row(
            router_id,
            event,
            by_number.get(event.revision, current) if event.revision is not None else current,
            book,
        )
        for event in events
    ]
    # Inside an outer transaction (tests, callers batching) ON COMMIT has not emptied the
    # stage table since the last batch, so clear it explicitly.
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CREATE_STAGE)
        if nested:
            cursor.execute(f"TRUNCATE {STAGE_TABLE}")
        with cursor.cursor.copy(f"COPY {STAGE_TABLE} ({_COLUMN_LIST}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(_INSERT_FROM_STAGE)
        accepted = cursor.rowcount
    return accepted, len(events) - accepted


def record_events(
    *, router_id: int, payload: Any, now: datetime | None = None, raw: bytes | None = None
) -> IngestResult:
    """Validate a decoded `{"events": [...]}` body and store its good events.

    `raw`, the body `payload` was decoded from, lets the hot path skip the per-event NUL scan
    when the bytes cannot hold one. Raises tracking.events.BatchError (400) / BatchTooLarge
    (413) for a bad envelope.
    """
    check_nul = raw is None or may_hold_nul(raw)
    valid, rejected = validate_batch(payload, now, check_nul=check_nul)
    accepted, duplicates = ingest_events(router_id=router_id, events=valid)
    return IngestResult(accepted, duplicates, rejected)


# --- Rollups ---------------------------------------------------------------------------------

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
_SUM_LIST = ", ".join(ROLLUP_SUMS)
_ADD_SUMS = ", ".join(f"{name} = r.{name} + EXCLUDED.{name}" for name in ROLLUP_SUMS)
_SUMMED = ", ".join(f"sum({name})" for name in ROLLUP_SUMS)
_HOUR_DAY = "(hour AT TIME ZONE 'UTC')::date"  # the UTC day of an hourly row
_ROLLUP_SELECT = f"""
    SELECT router_id, date_trunc('hour', "timestamp", 'UTC'), domain, selected_model,
           model_tier, ab_group,
           count(*), count(*) FILTER (WHERE success), count(*) FILTER (WHERE fallback_used),
           count(*) FILTER (WHERE routing_method = 'routellm'),
           count(cost), count(*) - count(cost),
           coalesce(sum(cost), 0), coalesce(sum({BASELINE_OR_COST}), 0),
           count(latency_ms), coalesce(sum(latency_ms), 0),
           coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0)
    FROM tracking_event
    WHERE {{where}}
    GROUP BY 1, 2, 3, 4, 5, 6
"""
_ROLLUP_COLUMNS = f"router_id, hour, domain, model, tier, ab_group, {_SUM_LIST}"
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
        router_id, day, domain, model, tier, ab_group, {_SUM_LIST})
    SELECT router_id, {_HOUR_DAY}, domain, model, tier, ab_group, {_SUMMED}
    FROM delta
    GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (router_id, day, domain, model, tier, ab_group) DO UPDATE SET {_ADD_SUMS}
"""
_HIST_UPSERT = f"""
    WITH counts AS MATERIALIZED ({_HIST_COUNTS}),
    day_counts AS MATERIALIZED (
        SELECT router_id, {_HOUR_DAY} AS day, bucket, sum(n) AS n FROM counts GROUP BY 1, 2, 3
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
        router_id, day, domain, model, tier, ab_group, {_SUM_LIST})
    SELECT router_id, {_HOUR_DAY}, domain, model, tier, ab_group, {_SUMMED}
    FROM tracking_eventrollup
    WHERE router_id = %(router)s AND hour >= %(day_start)s
    GROUP BY 1, 2, 3, 4, 5, 6
"""
_LATENCY_DAILY_FROM_HOURLY = f"""
    INSERT INTO tracking_latencydailyrollup (router_id, day, hist)
    SELECT router_id, {_HOUR_DAY}, tracking_hist_sum(hist)
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


# --- Re-pricing ------------------------------------------------------------------------------

REPRICE_CHUNK = 5000


def _try_advisory_lock(cursor: Any, key: int) -> bool:
    cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
    return bool(cursor.fetchone()[0])


def reprice_events(
    *,
    router_id: int,
    since: datetime,
    progress: Callable[[int, int], None] | None = None,
    book: PriceBook | None = None,
) -> int:
    """Re-price a router's events since `since` with `book` (default: today's price table);
    returns rows changed."""
    if book is None:
        book = price_book()
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT count(*) FROM tracking_event WHERE router_id = %s AND "timestamp" >= %s',
            [router_id, since],
        )
        total = cursor.fetchone()[0]
    current, by_number = _revision_models(router_id, set())
    revision_cache: dict[int, tuple[str, str]] = dict(by_number)
    done = changed = 0
    cursor_ts, cursor_id = since, None
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT event_id, "timestamp", revision, selected_model, prompt_tokens,
                       completion_tokens, estimated_cost, cost, baseline_cost
                FROM tracking_event
                WHERE router_id = %s AND "timestamp" >= %s
                  AND (%s::uuid IS NULL OR ("timestamp", event_id) > (%s, %s::uuid))
                ORDER BY "timestamp", event_id
                LIMIT %s
                """,
                [router_id, cursor_ts, cursor_id, cursor_ts, cursor_id, REPRICE_CHUNK],
            )
            rows = cursor.fetchall()
        if not rows:
            break
        missing = {r[2] for r in rows if r[2] is not None and r[2] not in revision_cache}
        if missing:
            revision_cache.update(_revision_models(router_id, missing)[1])
        ids, costs, baselines = [], [], []
        for event_id, ts, revision, model, pt, ct, estimated, old_cost, old_base in rows:
            strong = revision_cache.get(revision, current)[0] if revision else current[0]
            cost, baseline = price_event(
                book,
                model=model,
                strong_model=strong or None,
                at=ts,
                prompt_tokens=pt,
                completion_tokens=ct,
                estimated_cost=estimated,
            )
            if cost != old_cost or baseline != old_base:
                ids.append(event_id)
                costs.append(cost)
                baselines.append(baseline)
        if ids:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    """
                    UPDATE tracking_event e SET cost = v.cost, baseline_cost = v.baseline
                    FROM unnest(%s::uuid[], %s::float8[], %s::float8[]) AS v(id, cost, baseline)
                    WHERE e.router_id = %s AND e.event_id = v.id
                    """,
                    [ids, costs, baselines, router_id],
                )
            changed += len(ids)
        done += len(rows)
        cursor_ts, cursor_id = rows[-1][1], rows[-1][0]
        if progress:
            progress(done, max(total, done))
    rebuild_rollups(router_id=router_id, since=since)
    return changed


_PRICE_SNAPSHOT = """
    SELECT id, model, input_per_token, output_per_token, effective_from, applied_at IS NULL
    FROM tracking_modelprice
"""
# Only rows still holding the values the run read: one edited meanwhile stays pending.
_MARK_APPLIED = """
    UPDATE tracking_modelprice p SET applied_at = now()
    FROM unnest(%s::bigint[], %s::text[], %s::numeric[], %s::numeric[], %s::timestamptz[])
        AS v(id, model, input_per_token, output_per_token, effective_from)
    WHERE p.id = v.id AND p.applied_at IS NULL AND p.model = v.model
      AND p.input_per_token = v.input_per_token AND p.output_per_token = v.output_per_token
      AND p.effective_from = v.effective_from
"""


def apply_price_changes() -> int:
    """Re-price every router's events since the earliest price change not yet applied.

    One read of the price table is both the price book of the whole run and the list of pending
    rows, so a row is marked applied only when the values it holds at the end are the ones the
    events were re-priced with; a row added or edited during the run is left for the next run.
    """
    with connection.cursor() as cursor:
        if not _try_advisory_lock(cursor, LOCK_REPRICE):
            return 0
    try:
        with connection.cursor() as cursor:
            cursor.execute(_PRICE_SNAPSHOT)
            rows = cursor.fetchall()
        pending = [row[:5] for row in rows if row[5]]
        if not pending:
            return 0
        book = PriceBook(row[1:5] for row in rows)
        since = min(row[4] for row in pending)
        changed = 0
        for router_id in Router.objects.values_list("pk", flat=True):
            changed += reprice_events(router_id=router_id, since=since, book=book)
        with connection.cursor() as cursor:
            cursor.execute(_MARK_APPLIED, [list(column) for column in zip(*pending, strict=True)])
        return changed
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_REPRICE])


def recompute_savings(*, router_id: int, progress: Callable[[int, int], None] | None = None) -> int:
    """Re-price all of a router's stored events and rebuild its rollups (dashboard button)."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT min("timestamp") FROM tracking_event WHERE router_id = %s', [router_id]
        )
        oldest = cursor.fetchone()[0]
    if oldest is None:
        if progress:
            progress(0, 0)
        return 0
    return reprice_events(router_id=router_id, since=oldest, progress=progress)


# --- Retention, reports, clients -------------------------------------------------------------

PURGE_BATCH = 20_000


def retention_days(router: Router) -> int:
    config = router.current_revision.config if router.current_revision_id else {}
    try:
        return max(1, int(config.get("metrics_retention_days", 30)))
    except (TypeError, ValueError):
        return 30


def purge_expired_events(*, router_id: int, now: datetime | None = None) -> int:
    """Delete a router's events (and whole rollup hours and days) older than its retention.

    One purge per router at a time, across workers: a second one finds the lock taken and
    returns 0 at once. The lock is session-level because the purge commits in many short
    transactions, which a transaction-level lock would not outlive (one long transaction
    instead would hold back the rollup watermark for the whole purge).
    """
    # The two-int form keys the lock per router; the mask keeps the id in int4 range (a clash
    # past 2**31 routers only serializes two purges).
    key = [LOCK_RETENTION, router_id & 0x7FFF_FFFF]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", key)
        if not cursor.fetchone()[0]:
            return 0
    try:
        return _purge_expired_events(router_id=router_id, now=now)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", key)


def _purge_expired_events(*, router_id: int, now: datetime | None) -> int:
    router = Router.objects.select_related("current_revision").get(pk=router_id)
    cutoff = (now or timezone.now()) - timedelta(days=retention_days(router))
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            # Small batches keep each transaction short, so ingestion never waits on a purge.
            cursor.execute(
                """
                DELETE FROM tracking_event WHERE ctid = ANY(ARRAY(
                    SELECT ctid FROM tracking_event
                    WHERE router_id = %s AND "timestamp" < %s LIMIT %s))
                """,
                [router_id, cutoff, PURGE_BATCH],
            )
            batch = cursor.rowcount
        deleted += batch
        if batch < PURGE_BATCH:
            break
    with connection.cursor() as cursor:
        for table in ("tracking_eventrollup", "tracking_latencyrollup"):
            cursor.execute(
                f"DELETE FROM {table} WHERE router_id = %s AND hour + interval '1 hour' <= %s",
                [router_id, cutoff],
            )
        for table in ("tracking_eventdailyrollup", "tracking_latencydailyrollup"):
            # Days that ended by the cutoff, as for the hours above.
            cursor.execute(
                f"DELETE FROM {table} WHERE router_id = %s AND day < %s",
                [router_id, cutoff.astimezone(UTC).date()],
            )
    return deleted


def store_daily_report(*, router_id: int, day: date) -> SavingsReport:
    """Compute and keep the savings report of one UTC day (idempotent: one row per day)."""
    from tracking.selectors import report_between

    router = Router.objects.get(pk=router_id)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    data = report_between(router=router, start=start, end=start + timedelta(days=1))
    data["day"] = day.isoformat()
    report, _ = SavingsReport.objects.update_or_create(
        router=router, day=day, defaults={"data": data, "created_at": timezone.now()}
    )
    return report


def stale_clients(*, minutes: int = 10, now: datetime | None = None) -> list[RouterClient]:
    """Router processes not seen for `minutes`, logged so alerting can pick them up."""
    cutoff = (now or timezone.now()) - timedelta(minutes=minutes)
    clients = list(
        RouterClient.objects.select_related("router")
        .filter(last_seen__lt=cutoff, last_seen__gte=cutoff - timedelta(days=1))
        .order_by("last_seen")
    )
    for client in clients:
        log.warning(
            "router %s client %s not seen since %s",
            client.router.slug,
            client.client_id,
            client.last_seen.isoformat(),
        )
    return clients
