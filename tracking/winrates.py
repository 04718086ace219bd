"""The win-rate histogram (tracking_winratebucket): how it is folded, rebuilt and read.

Why a histogram: calibration and what-if replay read the distribution of stored strong win
rates over a window. At 10M events a scan takes seconds; the histogram has at most
days x domains x tiers x 2 sides x 1000 buckets rows (155k for 30 days of bench/whatif.py),
and reads are cached (winrate_histogram), so an answer takes milliseconds.

How it is folded, and why that survives late outcomes: the rollup job (tracking.rollups) calls
`fold_winrates` with the same ingest-xid range it folds into the other rollups, in the same
transaction, so this table always covers exactly the events the other rollups cover. Its sums
are signed deltas (`INSERT … ON CONFLICT DO UPDATE SET x = r.x + EXCLUDED.x`), never a
recount. An outcome that arrives after its event was folded changes the event's tokens and cost
and moves it back to the not-yet-folded tail (a new ingest_xid); before it does, it takes the
event's old values out of the rollups. `unfold_winrate_events` is that step for this table
(the same statement with sign -1, keyed by the event ids), so the re-fold adds the new values
once and nothing is counted twice. The columns the histogram is keyed on (timestamp, domain,
model_tier, strong_win_rate, threshold) are ones an outcome never changes, so the unfold hits
exactly the rows the first fold wrote. We fold by xid rather than keep a watermark of our own
because the token and cost sums must follow outcomes and re-pricing, like every other rollup.
So the outcome write must call `unfold_winrate_events` beside its unfold of the other rollups
(tests/tracking/test_winrates.py shows the sequence).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction

from tracking.models import WINRATE_BUCKETS

# Summed columns of tracking_winratebucket and their aggregate over events, in table order.
WINRATE_SUMS: tuple[tuple[str, str], ...] = (
    ("requests", "count(*)"),
    ("cost", "coalesce(sum(cost), 0)"),
    ("baseline", "coalesce(sum(coalesce(baseline_cost, cost)), 0)"),
    ("prompt_tokens", "coalesce(sum(prompt_tokens), 0)"),
    ("completion_tokens", "coalesce(sum(completion_tokens), 0)"),
    ("quality_count", "count(quality)"),
    ("quality_sum", "coalesce(sum(quality), 0)"),
)
_SUM_NAMES = ", ".join(name for name, _ in WINRATE_SUMS)
_KEY = "router_id, day, domain, tier, above, bucket"
# The bucket of a win rate (clamped to [0, 1]; 1.0 joins the last bucket).
BUCKET_SQL = (
    f"least({WINRATE_BUCKETS - 1}, greatest(0, floor(strong_win_rate * {WINRATE_BUCKETS})))"
    "::smallint"
)
# The side the event was routed on at its own threshold; without a threshold, its tier says.
ABOVE_SQL = "coalesce(strong_win_rate >= threshold, model_tier = 'strong')"


def _select(sign: int) -> str:
    sums = ", ".join(f"{sign} * ({expr})" for _, expr in WINRATE_SUMS)
    # Ordered by key, so concurrent upserts of overlapping keys lock rows in one order.
    return f"""
        SELECT router_id, ("timestamp" AT TIME ZONE 'UTC')::date, domain, model_tier,
               {ABOVE_SQL}, {BUCKET_SQL}, {sums}
        FROM tracking_event
        WHERE strong_win_rate IS NOT NULL AND {{where}}
        GROUP BY 1, 2, 3, 4, 5, 6
        ORDER BY 1, 2, 3, 4, 5, 6
    """


def _upsert(sign: int) -> str:
    add = ", ".join(f"{name} = r.{name} + EXCLUDED.{name}" for name, _ in WINRATE_SUMS)
    return f"""
        INSERT INTO tracking_winratebucket AS r ({_KEY}, {_SUM_NAMES})
        {_select(sign)}
        ON CONFLICT ({_KEY}) DO UPDATE SET {add}
    """


_UNFOLD = _upsert(-1)
# The fold also names the routers it changed a closed (before today, UTC) day of: their cached
# closed-days histograms are out of date (winrate_histogram).
_FOLD = f"""
    WITH folded AS ({_upsert(1)} RETURNING router_id, day)
    SELECT DISTINCT router_id FROM folded WHERE day < (now() AT TIME ZONE 'UTC')::date
"""


def fold_winrates(cursor: Any, *, where: str, params: dict[str, Any]) -> None:
    """Add the events matching `where` (the rollup job's xid range) to the histogram."""
    cursor.execute(_FOLD.format(where=where), params)
    for (router_id,) in cursor.fetchall():
        transaction.on_commit(lambda router_id=router_id: bump_histogram_version(router_id))


def unfold_winrate_events(cursor: Any, *, router_id: int, event_ids: list[Any]) -> None:
    """Take these (already folded) events' current values out of the histogram, inside the
    caller's transaction, before it changes them and moves them back to the tail."""
    if event_ids:
        where = "router_id = %(router)s AND event_id = ANY(%(ids)s::uuid[])"
        cursor.execute(_UNFOLD.format(where=where), {"router": router_id, "ids": event_ids})
        transaction.on_commit(lambda: bump_histogram_version(router_id))


def rebuild_winrates(cursor: Any, *, router_id: int, day: date, watermark: int) -> None:
    """Recompute a router's histogram from `day` on from the folded events themselves."""
    cursor.execute(
        "DELETE FROM tracking_winratebucket WHERE router_id = %s AND day >= %s", [router_id, day]
    )
    where = (
        "router_id = %(router)s AND \"timestamp\" >= %(day)s::date AT TIME ZONE 'UTC' "
        "AND ingest_xid < %(wm)s"
    )
    cursor.execute(
        f"INSERT INTO tracking_winratebucket ({_KEY}, {_SUM_NAMES}) "
        + _select(1).format(where=where),
        {"router": router_id, "day": day, "wm": watermark},
    )
    transaction.on_commit(lambda: bump_histogram_version(router_id))


@dataclass(frozen=True)
class BucketSums:
    """The window's sums for one (bucket, tier, side)."""

    bucket: int
    tier: str
    above: bool
    requests: int
    cost: float
    baseline: float
    prompt_tokens: int
    completion_tokens: int
    quality_count: int
    quality_sum: float


_FLOATS = ("cost", "baseline", "quality_sum")
_TYPE = {name: "float8" if name in _FLOATS else "bigint" for name, _ in WINRATE_SUMS}
_SUMMED = ", ".join(f"sum({name})::{_TYPE[name]}" for name, _ in WINRATE_SUMS)
_READ = f"""
    SELECT bucket, tier, above, {_SUMMED}
    FROM tracking_winratebucket
    WHERE router_id = %(router)s AND day >= %(start)s AND day < %(end)s {{domain}}
    GROUP BY 1, 2, 3
    HAVING sum(requests) <> 0
"""
HISTOGRAM_CACHE_SECONDS = 600


def winrate_histogram(
    *, router_id: int, start: date, domain: str | None = None, today: date | None = None
) -> list[BucketSums]:
    """The histogram of a router's folded events from UTC day `start` on (one domain or all).

    Read in two parts, each cached (Redis; without it, read from PostgreSQL): the closed days
    before today, keyed by the router's histogram version, which only a fold into a past day, a
    rebuild, an outcome's unfold or a retention purge bumps; and today, keyed by the rollup
    watermark, which every rollup run moves. So after a run only today's rows are read again
    (at most domains x tiers x 1000), not the whole window. The day boundary is the database
    server's UTC date for folds and this process's for reads: keep their clocks in step.
    """
    today = today or datetime.now(UTC).date()
    version = _cache_call(cache.get, _version_key(router_id)) or 0
    scope = f"{router_id}:{domain or ''}:{version}"
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        if start < today:
            key = f"winrates-closed:{scope}:{start}:{today}"
            rows += _cached_rows(cursor, key, router_id, start, today, domain)
        cursor.execute("SELECT xid FROM tracking_rollupwatermark WHERE id = 1")
        watermark = cursor.fetchone()
        first = max(start, today)
        key = f"winrates-today:{scope}:{first}:{watermark[0] if watermark else 0}"
        rows += _cached_rows(cursor, key, router_id, first, date.max, domain)
    return _merged(rows)


def _cached_rows(
    cursor: Any, key: str, router_id: int, start: date, end: date, domain: str | None
) -> list[tuple]:
    cached = _cache_call(cache.get, key)
    if cached is not None:
        return cached
    params = {"router": router_id, "start": start, "end": end, "domain": domain}
    cursor.execute(_READ.format(domain="AND domain = %(domain)s" if domain else ""), params)
    rows = cursor.fetchall()
    _cache_call(cache.set, key, rows, HISTOGRAM_CACHE_SECONDS)
    return rows


def _merged(rows: list[tuple]) -> list[BucketSums]:
    sums: dict[tuple, list] = {}
    for bucket, tier, above, *values in rows:
        total = sums.setdefault((bucket, tier, above), [0] * len(values))
        for index, value in enumerate(values):
            total[index] += value
    return [BucketSums(*key, *values) for key, values in sums.items() if values[0]]


def _version_key(router_id: int) -> str:
    return f"winrates-version:{router_id}"


def bump_histogram_version(router_id: int) -> None:
    """Drop a router's cached histograms (after a change to its closed days)."""
    key = _version_key(router_id)
    if not _cache_call(cache.add, key, 1, None):
        _cache_call(cache.incr, key)


def _cache_call(method: Any, *args: Any) -> Any:
    try:
        return method(*args)
    except Exception:  # Redis down or slow: read PostgreSQL, as without a cache
        return None
