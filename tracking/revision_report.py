"""Before/after per revision: each config revision's requests, strong share, cost, savings and
success rate over a window, so an operator sees what a phase or threshold change did.

Read from the hourly per-revision rollup (tracking_revisionrollup, folded by the same job and
watermark as the other rollups, see tracking.rollups) for the window's whole hours, plus raw
events for its partial first hour and for the not-yet-rolled-up tail, in one REPEATABLE READ
snapshot: exact, and about one rollup row per router-hour whatever the volume.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from controlplane.models import ConfigRevision, Router
from tracking.events import MAX_FUTURE
from tracking.rollups import REVISION_EVENT_SUMS_SQL, REVISION_SUMS

_SUM_LIST = ", ".join(REVISION_SUMS)

_REPORT_SQL = f"""
    SELECT revision, {", ".join(f"sum({name})" for name in REVISION_SUMS)}
    FROM (
        SELECT revision, {_SUM_LIST} FROM tracking_revisionrollup
        WHERE router_id = %(router)s AND hour >= %(full_start)s AND hour < %(end)s
        UNION ALL
        SELECT coalesce(revision, 0), {REVISION_EVENT_SUMS_SQL} FROM tracking_event
        WHERE router_id = %(router)s AND "timestamp" >= %(start)s
          AND "timestamp" < %(full_start)s
        GROUP BY 1
        UNION ALL
        SELECT coalesce(revision, 0), {REVISION_EVENT_SUMS_SQL} FROM tracking_event
        WHERE router_id = %(router)s AND ingest_xid >= %(watermark)s
          AND "timestamp" >= %(full_start)s AND "timestamp" < %(end)s
        GROUP BY 1
    ) AS s
    GROUP BY revision
    ORDER BY revision DESC
"""


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def _sums(router_id: int, start: datetime, end: datetime) -> list[tuple]:
    params = {
        "router": router_id,
        "start": start,
        "full_start": min(_ceil_hour(start), end),
        "end": end,
    }
    # One snapshot for the watermark and the rows (a caller's open transaction is one already).
    snapshot = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if snapshot:
            # JIT never pays off for this small read (as in tracking.reports).
            cursor.execute(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off"
            )
        cursor.execute("SELECT coalesce(max(xid), 0) FROM tracking_rollupwatermark WHERE id = 1")
        params["watermark"] = cursor.fetchone()[0]
        cursor.execute(_REPORT_SQL, params)
        return cursor.fetchall()


def _row(revision: ConfigRevision | None, number: int, sums: dict[str, Any]) -> dict[str, Any]:
    requests = int(sums["requests"])
    cost, baseline = float(sums["cost"]), float(sums["baseline"])

    def share(part: float) -> float:
        return float(part) / requests if requests else 0.0

    return {
        "revision": number or None,  # None: events that named no revision
        "action": revision.action if revision else "",
        "phase": revision.phase if revision else "",
        "phase_domain": revision.phase_domain if revision else "",
        "threshold": revision.config.get("threshold") if revision else None,
        "created_at": revision.created_at.isoformat() if revision else None,
        "total_requests": requests,
        "strong_share": share(sums["strong"]),
        "success_rate": share(sums["successes"]),
        "fallback_rate": share(sums["fallbacks"]),
        "actual_cost": cost,
        "baseline_cost": baseline,
        "estimated_savings": baseline - cost,
        "unpriced_requests": int(sums["unpriced"]),
    }


def revision_breakdown(
    *, router: Router, period_days: int = 7, now: datetime | None = None
) -> list[dict[str, Any]]:
    """One row per revision with events in the last `period_days` days (newest revision first),
    with that revision's action and phase: the savings report's window, grouped by revision."""
    now = now or timezone.now()
    start, end = now - timedelta(days=period_days), _ceil_hour(now + MAX_FUTURE)
    rows = _sums(router.pk, start, end)
    numbers = [row[0] for row in rows if row[0]]
    revisions = {r.number: r for r in router.revisions.filter(number__in=numbers)}
    return [
        _row(revisions.get(row[0]), row[0], dict(zip(REVISION_SUMS, row[1:], strict=True)))
        for row in rows
    ]
