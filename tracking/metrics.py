"""Prometheus instruments of tracking, and the numbers read from PostgreSQL at scrape time.

The event counters are incremented in memory by the process that ingests (prometheus_client's
multiprocess files sum the workers). Savings, strong share, lags and guardrail trips come from
the database instead, so they are the same whichever worker or replica is scraped; they are
computed at most every ROUTEPLANE_METRICS_CACHE_SECONDS per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count
from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from controlplane.models import AuditEntry, Router
from tracking.reports import overview_stats

EVENTS = Counter(
    "routeplane_events",
    "Events posted to POST /api/v1/events, by outcome (accepted, duplicate, rejected).",
    ["outcome"],
)
_ACCEPTED, _DUPLICATE, _REJECTED = (EVENTS.labels(o) for o in ("accepted", "duplicate", "rejected"))

GUARDRAIL_ACTOR = "system:guardrail"

# Today's (UTC) requests and strong-tier requests per router: the daily rollup plus the events
# not rolled up yet. One statement, so the watermark and the rows come from one snapshot.
_STRONG_SHARE_SQL = """
    WITH wm AS (SELECT coalesce((SELECT xid FROM tracking_rollupwatermark WHERE id = 1), 0) xid)
    SELECT router_id, sum(requests)::bigint, sum(strong)::bigint FROM (
        SELECT router_id, requests, CASE WHEN tier = 'strong' THEN requests ELSE 0 END strong
        FROM tracking_eventdailyrollup WHERE day = %(day)s
        UNION ALL
        SELECT router_id, 1, (model_tier = 'strong')::int
        FROM tracking_event
        WHERE ingest_xid >= (SELECT xid FROM wm)
          AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
    ) s GROUP BY router_id
"""
# Rollup lag: seconds since the watermark last moved. Ingestion lag: the age of the oldest
# accepted event not yet in the rollups (0 when every event is rolled up).
_LAG_SQL = """
    SELECT extract(epoch FROM now() - (SELECT updated_at FROM tracking_rollupwatermark
                                       WHERE id = 1))::float8,
           coalesce(extract(epoch FROM now() - (
               SELECT min(received_at) FROM tracking_event
               WHERE ingest_xid >= coalesce((SELECT xid FROM tracking_rollupwatermark
                                             WHERE id = 1), 0)))::float8, 0)
"""


def count_ingested(*, accepted: int, duplicates: int, rejected: int) -> None:
    if accepted:
        _ACCEPTED.inc(accepted)
    if duplicates:
        _DUPLICATE.inc(duplicates)
    if rejected:
        _REJECTED.inc(rejected)


def _today_families() -> list[Metric]:
    routers = dict(Router.objects.values_list("pk", "slug"))
    stats = overview_stats(routers=list(routers))
    now = datetime.now(UTC)
    start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            _STRONG_SHARE_SQL, {"day": start.date(), "start": start, "end": start + timedelta(1)}
        )
        strong = {row[0]: (int(row[1]), int(row[2])) for row in cursor.fetchall()}
        cursor.execute(_LAG_SQL)
        rollup_lag, ingest_lag = cursor.fetchone()
    requests = GaugeMetricFamily(
        "routeplane_router_requests_today", "Events of today (UTC) per router.", labels=["router"]
    )
    savings = GaugeMetricFamily(
        "routeplane_router_savings_usd_today",
        "Estimated savings of today (UTC) per router: baseline cost minus actual cost, USD.",
        labels=["router"],
    )
    share = GaugeMetricFamily(
        "routeplane_router_strong_share_today",
        "Share of today's (UTC) events that went to the strong model, per router (0 when none).",
        labels=["router"],
    )
    for pk, slug in routers.items():
        total, strong_count = strong.get(pk, (0, 0))
        requests.add_metric([slug], stats[pk]["total_requests"])
        savings.add_metric([slug], stats[pk]["estimated_savings"])
        share.add_metric([slug], strong_count / total if total else 0.0)
    lag = GaugeMetricFamily(
        "routeplane_rollup_lag_seconds", "Seconds since the rollup watermark last advanced."
    )
    if rollup_lag is not None:
        lag.add_metric([], rollup_lag)
    pending = GaugeMetricFamily(
        "routeplane_ingest_lag_seconds",
        "Age of the oldest accepted event not yet folded into the rollups (0: none pending).",
    )
    pending.add_metric([], ingest_lag)
    trips = CounterMetricFamily(
        "routeplane_guardrail_trips",
        "Times a guardrail stepped a router back (from the append-only audit log).",
        labels=["router"],
    )
    tripped = dict(
        AuditEntry.objects.filter(actor=GUARDRAIL_ACTOR, router__isnull=False)
        .order_by()
        .values("router_id")
        .annotate(trips=Count("id"))
        .values_list("router_id", "trips")
    )
    for pk, slug in routers.items():
        trips.add_metric([slug], tripped.get(pk, 0))
    return [requests, savings, share, lag, pending, trips]


class DatabaseCollector:
    """A prometheus_client collector of the database-derived families, cached per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: list[Metric] = []
        self._expires = 0.0

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() >= self._expires:
                self._families = _today_families()
                ttl = float(getattr(settings, "ROUTEPLANE_METRICS_CACHE_SECONDS", 5.0))
                self._expires = time.monotonic() + ttl
            families = self._families
        yield from families


database_collector = DatabaseCollector()
