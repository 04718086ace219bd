"""Savings page: figures, SVG charts, breakdowns, period selector, CSV, "Recompute now"."""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.servers import celery_worker_process, test_database_url

HX = {"HTTP_HX_REQUEST": "true"}


def _events(router, count=6, days_ago=0):
    from tracking.services import record_events

    moment = timezone.now() - timedelta(days=days_ago, minutes=5)
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "timestamp": moment.isoformat(),
            "selected_model": "gpt-3.5-turbo" if i % 3 else "gpt-4-1106-preview",
            "model_tier": "weak" if i % 3 else "strong",
            "routing_method": "routellm",
            "domains": ["legal" if i % 2 else "technical"],
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "latency_ms": 100 + i,
            "success": i != 1,
            "fallback_used": i == 1,
        }
        for i in range(count)
    ]
    assert record_events(router_id=router.pk, payload={"events": events}).accepted == count


@pytest.fixture
def with_events(router):
    _events(router, 6, days_ago=0)
    _events(router, 3, days_ago=2)
    return router


def test_savings__figures_charts_and_breakdowns(viewer_client, with_events):
    response = viewer_client.get("/routers/checkout/savings/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Estimated savings" in body
    assert body.count("<svg") == 4 and body.count("<polyline") == 7  # latency: the daily average
    assert "Cost per day: actual vs all-strong baseline" in body
    assert ">legal<" in body and ">technical<" in body  # by domain
    assert ">gpt-3.5-turbo<" in body and ">gpt-4-1106-preview<" in body  # by model
    assert ">9<" in body  # requests in 7 days
    assert 'aria-current="true" class="active">7 days<' in body
    # Viewers cannot queue a recompute.
    assert 'disabled title="Viewers cannot change routers">Recompute now' in body


def test_savings__period_selector__htmx_partial(operator_client, with_events):
    response = operator_client.get("/routers/checkout/savings/?days=1", **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'id="savings-body"' in body
    assert 'class="active">24 h<' in body
    assert ">6<" in body  # only today's events


def test_savings__unknown_period__falls_back_to_7_days(operator_client, with_events):
    body = operator_client.get("/routers/checkout/savings/?days=5").content.decode()
    assert 'class="active">7 days<' in body


def test_savings__no_events__empty_state_no_error(operator_client, router):
    response = operator_client.get("/routers/checkout/savings/")
    assert response.status_code == 200
    assert "$0.00" in response.content.decode()


@pytest.mark.parametrize(
    "url", ["/routers/checkout/savings.csv?days=7", "/routers/checkout/savings/?format=csv"]
)
def test_savings_csv__one_row_per_day(viewer_client, with_events, url):
    response = viewer_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="checkout-savings-7d.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert 7 <= len(rows) <= 8  # a rolling 7-day window touches 8 UTC dates
    assert sum(int(r["total_requests"]) for r in rows) == 9
    today = timezone.now().date().isoformat()
    (row,) = [r for r in rows if r["day"] == today]
    assert int(row["total_requests"]) == 6
    assert float(row["baseline_cost"]) > float(row["actual_cost"]) > 0
    assert float(row["fallback_rate"]) == pytest.approx(1 / 6)


def test_recompute__viewer__403(viewer_client, router):
    assert viewer_client.post("/routers/checkout/savings/recompute/", **HX).status_code == 403


def test_recompute_status__bad_task_id__400(operator_client, router):
    response = operator_client.get("/routers/checkout/savings/recompute/nope/", **HX)
    assert response.status_code == 400


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A real Celery worker process on this test database and this engineer's Redis."""
    with celery_worker_process(test_database_url(), log_path=tmp_path / "worker.log") as process:
        yield process


@pytest.mark.slow
def test_recompute__real_worker__progress_until_success(operator_client, router, celery_worker):
    _events(router, 5)
    response = operator_client.post("/routers/checkout/savings/recompute/", **HX)
    assert response.status_code == 202
    body = response.content.decode()
    assert "Queued" in body and 'hx-trigger="every 1s"' in body
    task_id = body.split("/savings/recompute/")[1].split("/")[0]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = operator_client.get(f"/routers/checkout/savings/recompute/{task_id}/", **HX)
        if "Recomputed" in status.content.decode():
            break
        time.sleep(0.5)
    log_tail = celery_worker.log_path.read_text(errors="replace")[-3000:]
    assert "✓ Recomputed." in status.content.decode(), (status.content.decode(), log_tail)
    assert status["HX-Trigger"] == "savings-recomputed"
    assert 'hx-trigger="every 1s"' not in status.content.decode()  # polling stops
