"""Retention: delete each router's events and rollups older than its retention setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from controlplane.models import Router
from tracking.locks import LOCK_RETENTION
from tracking.winrates import bump_histogram_version

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
        for table in ("tracking_eventrollup", "tracking_latencyrollup", "tracking_revisionrollup"):
            cursor.execute(
                f"DELETE FROM {table} WHERE router_id = %s AND hour + interval '1 hour' <= %s",
                [router_id, cutoff],
            )
        daily = (
            "tracking_eventdailyrollup",
            "tracking_latencydailyrollup",
            "tracking_winratebucket",
        )
        for table in daily:
            # Days that ended by the cutoff, as for the hours above.
            cursor.execute(
                f"DELETE FROM {table} WHERE router_id = %s AND day < %s",
                [router_id, cutoff.astimezone(UTC).date()],
            )
    bump_histogram_version(router_id)  # windows reaching past the cutoff lost days
    return deleted
