"""The win-rate histogram (tracking_winratebucket): how it is folded, rebuilt and read.

Why a histogram: calibration and what-if replay read the distribution of stored strong win
rates over a window. At 10M events a scan is seconds; the histogram is at most
days x domains x tiers x 2 sides x 1000 buckets rows, read in milliseconds.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction

from tracking.models import WINRATE_BUCKETS

# Summed columns of tracking_winratebucket and their aggregate over events, in table order.
# (When events gain a quality column, quality_count / quality_sum go here and in the model.)
WINRATE_SUMS: tuple[tuple[str, str], ...] = (
    ("requests", "count(*)"),
    ("priced", "count(cost)"),
    ("cost", "coalesce(sum(cost), 0)"),
    ("baseline", "coalesce(sum(coalesce(baseline_cost, cost)), 0)"),
    ("prompt_tokens", "coalesce(sum(prompt_tokens), 0)"),
    ("completion_tokens", "coalesce(sum(completion_tokens), 0)"),
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


_FOLD, _UNFOLD = _upsert(1), _upsert(-1)


def fold_winrates(cursor: Any, *, where: str, params: dict[str, Any]) -> None:
    """Add the events matching `where` (the rollup job's xid range) to the histogram."""
    cursor.execute(_FOLD.format(where=where), params)


def unfold_winrate_events(cursor: Any, *, router_id: int, event_ids: list[Any]) -> None:
    """Take these (already folded) events' current values out of the histogram, inside the
    caller's transaction, before it changes them and moves them back to the tail."""
    if event_ids:
        where = "router_id = %(router)s AND event_id = ANY(%(ids)s::uuid[])"
        cursor.execute(_UNFOLD.format(where=where), {"router": router_id, "ids": event_ids})
        transaction.on_commit(lambda: _bump_version(router_id))


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
    transaction.on_commit(lambda: _bump_version(router_id))


@dataclass(frozen=True)
class BucketSums:
    """The window's sums for one (bucket, tier, side)."""

    bucket: int
    tier: str
    above: bool
    requests: int
    priced: int
    cost: float
    baseline: float
    prompt_tokens: int
    completion_tokens: int


_TYPE = {name: "float8" if name in ("cost", "baseline") else "bigint" for name, _ in WINRATE_SUMS}
_SUMMED = ", ".join(f"sum({name})::{_TYPE[name]}" for name, _ in WINRATE_SUMS)
_READ = f"""
    SELECT bucket, tier, above, {_SUMMED}
    FROM tracking_winratebucket
    WHERE router_id = %(router)s AND day >= %(start)s {{domain}}
    GROUP BY 1, 2, 3
    HAVING sum(requests) <> 0
"""


def winrate_histogram(
    *, router_id: int, start: date, domain: str | None = None
) -> list[BucketSums]:
    """The histogram of a router's folded events from UTC day `start` on (one domain or all).

    Cached (Redis) per rollup watermark: the histogram only changes when the rollup job moves
    the watermark, or when a rebuild or an outcome's unfold bumps the router's version, so the
    what-if slider's requests after the first read a cached answer. Fails open without Redis.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT xid FROM tracking_rollupwatermark WHERE id = 1")
        row = cursor.fetchone()
        key = f"winrates:{router_id}:{start}:{domain or ''}:{row[0] if row else 0}"
        key += f":{_cache_call(cache.get, _version_key(router_id)) or 0}"
        cached = _cache_call(cache.get, key)
        if cached is not None:
            return [BucketSums(*item) for item in cached]
        params: dict[str, Any] = {"router": router_id, "start": start, "domain": domain}
        cursor.execute(_READ.format(domain="AND domain = %(domain)s" if domain else ""), params)
        rows = cursor.fetchall()
    _cache_call(cache.set, key, rows, HISTOGRAM_CACHE_SECONDS)
    return [BucketSums(*item) for item in rows]


HISTOGRAM_CACHE_SECONDS = 600


def _version_key(router_id: int) -> str:
    return f"winrates-version:{router_id}"


def _bump_version(router_id: int) -> None:
    key = _version_key(router_id)
    if not _cache_call(cache.add, key, 1, None):
        _cache_call(cache.incr, key)


def _cache_call(method: Any, *args: Any) -> Any:
    try:
        return method(*args)
    except Exception:  # Redis down or slow: read PostgreSQL, as without a cache
        return None
