"""Retention: old events purged, rollups kept, one purge at a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from controlplane.services import update_config
from tests.tracking.conftest import make_event
from tests.tracking.recount import ingest
from tracking import retention, rollups
from tracking.models import Event, EventDailyRollup, EventRollup, LatencyDailyRollup


@pytest.mark.django_db(transaction=True)
def test_retention__removes_only_old_events(router, actor):
    update_config(router=router, changes={"metrics_retention_days": 10}, actor=actor)
    now = datetime.now(UTC)
    old = [make_event(timestamp=now - timedelta(days=11, hours=i)) for i in range(5)]
    kept = [make_event(timestamp=now - timedelta(days=9)), make_event(timestamp=now)]
    ingest(router, old + kept)
    assert rollups.rollup_events() == 7
    assert EventRollup.objects.filter(router=router, hour__lt=now - timedelta(days=10)).exists()

    assert retention.purge_expired_events(router_id=router.pk, now=now) == 5

    left = {str(e) for e in Event.objects.filter(router=router).values_list("event_id", flat=True)}
    assert left == {e["event_id"] for e in kept}
    assert not EventRollup.objects.filter(router=router, hour__lt=now - timedelta(days=10, hours=1))
    # Daily rows go once their whole day is older than the cutoff; the cutoff's day stays.
    cutoff_day = (now - timedelta(days=10)).date()
    days = set(EventDailyRollup.objects.filter(router=router).values_list("day", flat=True))
    assert days and min(days) == (now - timedelta(days=9)).date()
    assert not EventDailyRollup.objects.filter(router=router, day__lt=cutoff_day).exists()
    assert not LatencyDailyRollup.objects.filter(router=router, day__lt=cutoff_day).exists()


@pytest.mark.django_db(transaction=True)
def test_retention__two_purges_at_once__second_skips(router, actor, monkeypatch):
    update_config(router=router, changes={"metrics_retention_days": 10}, actor=actor)
    now = datetime.now(UTC)
    ingest(router, [make_event(timestamp=now - timedelta(days=11, hours=i)) for i in range(5)])
    first_inside, release = threading.Event(), threading.Event()
    retention_days = retention.retention_days

    def slow_first(router):
        # The first purge pauses inside (holding its lock) until the second one has finished.
        if not first_inside.is_set():
            first_inside.set()
            release.wait(10)
        return retention_days(router)

    monkeypatch.setattr(retention, "retention_days", slow_first)
    results: dict[str, int] = {}

    def purge(name: str) -> None:
        try:
            results[name] = retention.purge_expired_events(router_id=router.pk, now=now)
        finally:
            connection.close()

    first = threading.Thread(target=purge, args=("first",))
    first.start()
    assert first_inside.wait(10)
    second = threading.Thread(target=purge, args=("second",))
    second.start()
    second.join(10)
    release.set()
    first.join(10)

    assert results == {"first": 5, "second": 0}
    assert not Event.objects.filter(router=router).exists()
    # The lock is released: a later purge runs (and finds nothing left).
    assert retention.purge_expired_events(router_id=router.pk, now=now) == 0
