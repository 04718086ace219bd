"""Before/after per revision: rollup + partial first hour + tail equals a raw recount; the
savings API's group_by=revision and the savings page's table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from controlplane.services import set_phase
from tests.tracking.conftest import make_event
from tests.tracking.recount import ingest, spread_events
from tracking import rollups
from tracking.models import RevisionRollup
from tracking.retention import purge_expired_events
from tracking.revision_report import revision_breakdown


def _revision_events(start: datetime, count: int, seed: int) -> list[dict]:
    events = spread_events(count, start=start, seed=seed)
    for i, event in enumerate(events):
        event["revision"] = [1, 2, None][i % 3]
        event["model_tier"] = "strong" if i % 4 == 0 else "weak"
        event["fallback_used"] = i % 9 == 0
    return events


def _raw(router, start: datetime) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT coalesce(revision, 0), count(*), count(*) FILTER (WHERE model_tier = 'strong'),
                   coalesce(sum(cost), 0), coalesce(sum(coalesce(baseline_cost, cost)), 0),
                   count(*) FILTER (WHERE success)
            FROM tracking_event WHERE router_id = %s AND "timestamp" >= %s GROUP BY 1
            """,
            [router.pk, start],
        )
        return {row[0] or None: row[1:] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_breakdown__rollup_edge_hour_and_tail__equal_raw_recount(router):
    now = datetime.now(UTC)
    start = now - timedelta(days=2, hours=12, minutes=3)
    ingest(router, _revision_events(start, 500, seed=0))
    assert rollups.rollup_events() == 500
    assert RevisionRollup.objects.filter(router=router).exists()
    ingest(router, _revision_events(start + timedelta(minutes=2), 200, seed=2))  # the tail

    for period in (1, 2, 3):
        rows = revision_breakdown(router=router, period_days=period, now=now)
        raw = _raw(router, now - timedelta(days=period))
        assert {row["revision"] for row in rows} == set(raw)
        for row in rows:
            requests, strong, cost, baseline, successes = raw[row["revision"]]
            assert row["total_requests"] == requests
            assert row["strong_share"] == pytest.approx(strong / requests)
            assert row["actual_cost"] == pytest.approx(cost, rel=1e-9)
            assert row["estimated_savings"] == pytest.approx(baseline - cost, rel=1e-9, abs=1e-12)
            assert row["success_rate"] == pytest.approx(successes / requests)

    rollups.rebuild_rollups(router_id=router.pk, since=start)  # re-pricing rebuilds it too
    rows = revision_breakdown(router=router, period_days=3, now=now)
    assert sum(row["total_requests"] for row in rows) == 700


@pytest.mark.django_db(transaction=True)
def test_retention__drops_expired_revision_rollup_hours(router):
    old = datetime.now(UTC) - timedelta(days=40)
    ingest(router, [make_event(timestamp=old, revision=1)])
    rollups.rollup_events()
    assert RevisionRollup.objects.filter(router=router).count() == 1
    purge_expired_events(router_id=router.pk)
    assert not RevisionRollup.objects.filter(router=router).exists()


def test_breakdown__rows_name_the_revisions_action_and_phase(router, actor):
    set_phase(router=router, phase="monitoring", actor=actor)
    ingest(router, [make_event(revision=2, model_tier="strong"), make_event(revision=1)])

    rows = revision_breakdown(router=router, period_days=1)

    assert [(r["revision"], r["action"], r["phase"]) for r in rows] == [
        (2, "phase.set", "monitoring"),
        (1, "router.create", "disabled"),
    ]
    assert rows[0]["strong_share"] == 1.0


def test_savings_api__group_by_revision(viewer_api, router):
    ingest(router, [make_event(revision=1), make_event()])
    response = viewer_api.get("/api/v1/reports/savings?router=checkout&group_by=revision")
    assert response.status_code == 200
    assert [row["revision"] for row in response.json()["by_revision"]] == [1, None]
    plain = viewer_api.get("/api/v1/reports/savings?router=checkout").json()
    assert "by_revision" not in plain


def test_savings_api__unknown_group_by__400(viewer_api, router):
    response = viewer_api.get("/api/v1/reports/savings?router=checkout&group_by=model")
    assert response.status_code == 400
    assert "group_by" in response.json()["errors"]
