"""Celery tasks on a real worker process (tests/tracking/conftest.py: celery_worker)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from celery.result import AsyncResult

from tests.tracking.conftest import make_event, test_database_url
from tracking import repricing, tasks
from tracking.ingest import record_events
from tracking.models import EventRollup, ModelPrice
from tracking.outcome_ingest import record_outcomes
from tracking.reports import savings_report

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def ingest(router, events):
    result = record_events(router_id=router.pk, payload={"events": events})
    assert result.accepted == len(events)


def acme_events(count: int) -> list[dict]:
    at = datetime.now(UTC) - timedelta(hours=3)
    return [
        # Both token counts: with one missing the event is priced only by its estimate (none).
        make_event(
            timestamp=at + timedelta(seconds=i),
            selected_model="acme-9",
            prompt_tokens=1000,
            completion_tokens=0,
        )
        for i in range(count)
    ]


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_rollup_task__worker_folds_events(celery_worker, router):
    ingest(router, [make_event(prompt_tokens=10) for _ in range(25)])

    assert tasks.rollup_events.delay().get(timeout=30) == 25
    assert sum(EventRollup.objects.filter(router=router).values_list("requests", flat=True)) == 25
    assert tasks.rollup_events.delay().get(timeout=30) == 0


def test_price_change__queues_repricing_on_the_worker(celery_worker, router):
    ingest(router, acme_events(10))
    assert savings_report(router=router)["unpriced_requests"] == 10

    repricing.set_model_price(
        model="acme-9",
        input_per_token=Decimal("0.000002"),
        output_per_token=Decimal("0.000004"),
        effective_from=datetime.now(UTC) - timedelta(days=1),
    )

    wait_for(lambda: ModelPrice.objects.filter(model="acme-9", applied_at__isnull=False).exists())
    report = savings_report(router=router)
    assert report["unpriced_requests"] == 0
    assert report["actual_cost"] == pytest.approx(10 * 1000 * 2e-6)


def test_recompute_savings__reports_progress_then_success(celery_worker, router):
    ingest(router, acme_events(30))
    repricing.set_model_price(
        model="acme-9",
        input_per_token=Decimal("0.000001"),
        output_per_token=Decimal("0"),
        effective_from=datetime.now(UTC) - timedelta(days=1),
        reprice=False,
    )
    # Hold the rollup watermark: the task re-prices, reports progress, then waits on the lock.
    with psycopg.connect(test_database_url()) as blocker:
        blocker.execute("SELECT 1 FROM tracking_rollupwatermark WHERE id = 1 FOR UPDATE")
        result = tasks.recompute_savings.delay(router.pk)
        wait_for(lambda: AsyncResult(result.id).state == "PROGRESS")
        assert AsyncResult(result.id).info == {"done": 30, "total": 30}
        blocker.rollback()

    assert result.get(timeout=30) == {"changed": 30}
    assert AsyncResult(result.id).state == "SUCCESS"
    assert savings_report(router=router)["actual_cost"] == pytest.approx(30 * 1000 * 1e-6)


def test_outcomes_after_worker_rollup__worker_folds_new_values_report_exact(celery_worker, router):
    events = [make_event(latency_ms=3.0, domains=["legal"]) for _ in range(40)]
    ingest(router, events)
    assert tasks.rollup_events.delay().get(timeout=30) == 40
    outcomes = [
        {
            "event_id": e["event_id"],
            "prompt_tokens": 1000,
            "completion_tokens": 1000,
            "quality": 0.5,
        }
        for e in events[:10]
    ]

    result = record_outcomes(router_id=router.pk, payload={"outcomes": outcomes})

    assert result.accepted == 10
    # gpt-3.5-turbo: 1000 x 0.5e-6 + 1000 x 1.5e-6 = 0.002 each; the other 30 are unpriced.
    expected = {"total_requests": 40, "unpriced_requests": 30, "quality_samples": 10}
    report = savings_report(router=router)
    assert {k: report[k] for k in expected} == expected
    assert report["actual_cost"] == pytest.approx(10 * 0.002)
    assert tasks.rollup_events.delay().get(timeout=30) == 10
    after = savings_report(router=router)
    assert {k: after[k] for k in expected} == expected
    assert after["actual_cost"] == pytest.approx(10 * 0.002)
    assert after["by_domain"][0]["average_quality"] == pytest.approx(0.5)
    rolled = EventRollup.objects.filter(router=router)
    assert sum(r.requests for r in rolled) == 40
    assert sum(r.quality_count for r in rolled) == 10
