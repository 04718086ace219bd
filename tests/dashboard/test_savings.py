"""Savings page: figures, SVG charts, breakdowns, period selector, CSV, "Recompute now"."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.servers import celery_worker_process, test_database_url
from tests.tracking.conftest import make_event
from tracking.ingest import record_events

HX = {"HTTP_HX_REQUEST": "true"}


def _events(router, count=6, days_ago=0):
    from tracking.ingest import record_events

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


def _rate(router, scores: list[float | None]) -> None:
    """Outcomes for the router's events, newest first, with these quality scores."""
    from tracking.models import Event
    from tracking.outcome_ingest import record_outcomes

    ids = Event.objects.filter(router=router).order_by("-timestamp", "event_id")
    outcomes = [
        {"event_id": str(event_id), "quality": score, "success": True}
        for event_id, score in zip(ids.values_list("event_id", flat=True), scores, strict=False)
    ]
    assert record_outcomes(router_id=router.pk, payload={"outcomes": outcomes}).accepted


def _cells(body: str, key: str) -> list[str]:
    """The Quality cells of the breakdown row whose key cell reads `key`."""
    row = body.split(f'breakdown-key">{key}<', 1)[1].split("</tr>", 1)[0]
    return re.findall(r'data-label="Quality">(.*?)</td>', row)


def test_savings__quality_beside_savings__average_samples_and_per_row(viewer_client, with_events):
    from tracking.models import Event

    _rate(with_events, [1.0, 0.5, 0.75])
    scored = Event.objects.filter(router=with_events, quality__isnull=False)
    by_domain = {d: [e.quality for e in scored if e.domain == d] for d in ("legal", "technical")}

    body = viewer_client.get("/routers/checkout/savings/").content.decode()

    kpi = body.split('kpi-quality">', 1)[1].split("</div>", 1)[0]
    assert "<strong>0.75</strong>" in kpi and "average of 3 scored requests" in kpi
    for domain, scores in by_domain.items():
        (cell,) = _cells(body, domain)
        if scores:
            assert f"{sum(scores) / len(scores):.2f} " in cell
            assert f"({len(scores)})" in cell
        else:
            assert "—" in cell and "No outcome with a quality score" in cell
    assert "Quality “—”" not in body  # some quality was recorded: no explanation needed


def test_savings__no_quality_reported__dash_and_why(viewer_client, with_events):
    body = viewer_client.get("/routers/checkout/savings/").content.decode()

    kpi = body.split('kpi-quality">', 1)[1].split("</div>", 1)[0]
    assert "<strong>—</strong>" in kpi and "no quality reported" in kpi
    assert all("—" in cell for cell in _cells(body, "legal") + _cells(body, "gpt-3.5-turbo"))
    assert "no outcome in this period carried a quality score" in body
    assert "record_outcome(quality=…)" in body


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
    assert (row["average_quality"], row["quality_samples"]) == ("", "0")  # none reported


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


# --- "Recompute now": the status outlives the figures' reload; errors are shown ---------------


class FakeResult:
    """celery.result.AsyncResult for a task in a given state (no result backend needed)."""

    state = "SUCCESS"
    info: object = {"changed": 3}

    def __init__(self, task_id):
        self.id = task_id


def test_savings__recompute_status__outside_the_reloaded_body(operator_client, with_events):
    page = operator_client.get("/routers/checkout/savings/").content.decode()
    assert page.count('id="recompute-status"') == 1
    assert page.index('id="recompute-status"') < page.index('id="savings-body"')
    # What "savings-recomputed" reloads: the figures, without the status or its button.
    body = operator_client.get("/routers/checkout/savings/?days=7", **HX).content.decode()
    assert 'hx-trigger="savings-recomputed from:body"' in body
    assert "recompute-status" not in body and "Recompute now" not in body
    assert ">9<" in body


def test_recompute_status__success__done_and_figures_reload(operator_client, router, monkeypatch):
    monkeypatch.setattr("celery.result.AsyncResult", FakeResult)
    task_id = str(uuid.uuid4())
    response = operator_client.get(f"/routers/checkout/savings/recompute/{task_id}/", **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "✓ Recomputed." in body and 'id="recompute-status"' in body
    assert "every 1s" not in body  # polling stops
    # The trigger reloads #savings-body, which no longer holds this status: it stays.
    assert response["HX-Trigger"] == "savings-recomputed"


def test_recompute_status__progress__running_with_percent(operator_client, router, monkeypatch):
    class Running(FakeResult):
        state = "PROGRESS"
        info = {"done": 1, "total": 4}

    monkeypatch.setattr("celery.result.AsyncResult", Running)
    task_id = str(uuid.uuid4())
    response = operator_client.get(f"/routers/checkout/savings/recompute/{task_id}/", **HX)
    body = response.content.decode()
    assert "Recomputing… 25 %" in body and 'hx-trigger="every 1s"' in body
    assert "HX-Trigger" not in response


def test_recompute__broker_down__503_partial_htmx_swaps(operator_client, router, monkeypatch):
    from kombu.exceptions import OperationalError

    class QueueDown:
        def delay(self, *args):
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("tracking.tasks.recompute_savings", QueueDown())
    response = operator_client.post("/routers/checkout/savings/recompute/", **HX)
    assert response.status_code == 503
    body = response.content.decode()
    assert "<html" not in body and 'id="recompute-status"' in body
    assert "the task queue is unreachable" in body
    # base.html does not swap 5xx; this target opts in for 503 (routeplane.js), and so does
    # the element that replaces it, so a retry's answer is shown the same way.
    assert 'data-swap-errors="503"' in body
    page = operator_client.get("/routers/checkout/savings/").content.decode()
    assert re.search(r'<div id="recompute-status"[^>]* data-swap-errors="503"', page)


# --- CSV columns and days without traffic -----------------------------------------------------


def test_savings_csv__columns__average_latency_no_empty_percentiles(viewer_client, with_events):
    response = viewer_client.get("/routers/checkout/savings.csv?days=7")
    reader = csv.DictReader(io.StringIO(response.content.decode()))
    assert reader.fieldnames == [
        "day",
        "total_requests",
        "routellm_requests",
        "actual_cost",
        "baseline_cost",
        "estimated_savings",
        "savings_percent",
        "strong_share",
        "success_rate",
        "fallback_rate",
        "average_latency_ms",
        "unpriced_requests",
        "average_quality",
        "quality_samples",
    ]
    rows = {r["day"]: r for r in reader}
    # The days the events were stamped with (5 minutes back: see _events).
    today = rows[(timezone.now() - timedelta(minutes=5)).date().isoformat()]
    assert float(today["average_latency_ms"]) == pytest.approx(102.5)  # 100..105 ms
    two_days_ago = rows[(timezone.now() - timedelta(days=2, minutes=5)).date().isoformat()]
    assert float(two_days_ago["average_latency_ms"]) == pytest.approx(101.0)  # 100..102 ms
    # A day without requests has costs (0) but no rates or latency: blank, not 0.
    quiet = [r for r in rows.values() if r["total_requests"] == "0"]
    assert quiet
    for row in quiet:
        assert row["actual_cost"] == "0.0"
        assert row["average_latency_ms"] == row["success_rate"] == row["savings_percent"] == ""


def test_savings__no_events__rates_are_dashes(operator_client, router):
    body = operator_client.get("/routers/checkout/savings/").content.decode()
    assert "0.0 %" not in body and "<strong>— / —</strong>" in body  # latency p50 / p95


@pytest.mark.parametrize("days", [2, 8, 31, 32, 91])
def test_chart_x_labels__ends_grow_inwards_and_phones_keep_every_other(days):
    from dashboard.views.savings import line_chart

    labels = [f"2026-01-{i:02d}" if i < 32 else f"2026-02-{i - 31:02d}" for i in range(1, days + 1)]
    chart = line_chart(title="t", labels=labels, series=[("s", [1.0] * days, "c")])
    x_labels = chart["x_labels"]
    assert x_labels[-1]["text"] == labels[-1][5:]  # the last day is always labelled
    assert (x_labels[0]["anchor"], x_labels[-1]["anchor"]) == ("start", "end")
    assert {label["anchor"] for label in x_labels[1:-1]} <= {"middle"}
    # Phones show the last label and every other one back from it.
    assert [label["minor"] for label in reversed(x_labels)] == [
        k % 2 == 1 for k in range(len(x_labels))
    ]
    # No label crowds the last one: neighbours are at least half a step apart.
    xs = [float(label["x"]) for label in x_labels]
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert min(gaps) >= max(gaps) / 2


@pytest.mark.django_db
def test_savings_page__by_revision_table(operator_client, router):
    record_events(router_id=router.pk, payload={"events": [make_event(revision=1)]})
    page = operator_client.get("/routers/checkout/savings/").content.decode()
    assert 'id="by-revision"' in page
    assert 'data-revision="1"' in page
