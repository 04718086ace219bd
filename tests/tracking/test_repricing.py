"""Re-pricing events after a price change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.tracking.conftest import make_event
from tests.tracking.recount import ingest
from tracking import repricing
from tracking.models import Event, ModelPrice
from tracking.reports import savings_report


@pytest.mark.django_db
def test_price_change__reprices_affected_events(router):
    at = datetime.now(UTC) - timedelta(hours=2)
    # Both token counts: with one missing the event is priced only by its estimate (none here).
    tokens = dict(prompt_tokens=1_000_000, completion_tokens=0)
    ingest(router, [make_event(timestamp=at, selected_model="acme-1", **tokens)])
    assert savings_report(router=router)["unpriced_requests"] == 1

    repricing.set_model_price(
        model="acme-*",
        input_per_token=Decimal("0.000001"),
        output_per_token=Decimal("0.000002"),
        effective_from=at - timedelta(days=1),
    )
    repricing.apply_price_changes()

    report = savings_report(router=router)
    assert report["unpriced_requests"] == 0
    assert report["actual_cost"] == pytest.approx(1.0)
    assert report["baseline_cost"] == pytest.approx(10.0)  # 1M prompt tokens at gpt-4-1106


@pytest.mark.django_db
def test_price_change__only_since_effective_from(router):
    old = datetime.now(UTC) - timedelta(days=3)
    new = datetime.now(UTC) - timedelta(hours=1)
    tokens = dict(selected_model="gpt-3.5-turbo", prompt_tokens=1_000_000, completion_tokens=0)
    ingest(router, [make_event(timestamp=old, **tokens), make_event(timestamp=new, **tokens)])

    repricing.set_model_price(
        model="gpt-3.5-turbo",
        input_per_token=Decimal("0.000003"),
        output_per_token=Decimal("0.000004"),
        effective_from=new - timedelta(hours=1),
    )
    repricing.apply_price_changes()

    costs = dict(Event.objects.filter(router=router).values_list("timestamp", "cost"))
    assert sorted(costs.values()) == [pytest.approx(0.5), pytest.approx(3.0)]


@pytest.mark.django_db
def test_apply_price_changes__row_edited_during_the_run__stays_pending(router, monkeypatch):
    at = datetime.now(UTC) - timedelta(hours=2)
    tokens = dict(prompt_tokens=1_000_000, completion_tokens=0)
    ingest(router, [make_event(timestamp=at, selected_model="acme-1", **tokens)])
    price = dict(model="acme-*", output_per_token=Decimal(0), effective_from=at - timedelta(days=1))
    repricing.set_model_price(input_per_token=Decimal("0.000001"), **price)
    reprice = repricing.reprice_events

    def edited_meanwhile(**kwargs):
        # An operator corrects the price while the run is re-pricing with the value it read.
        repricing.set_model_price(input_per_token=Decimal("0.000002"), **price)
        return reprice(**kwargs)

    monkeypatch.setattr(repricing, "reprice_events", edited_meanwhile)
    repricing.apply_price_changes()
    monkeypatch.setattr(repricing, "reprice_events", reprice)

    assert ModelPrice.objects.get(model="acme-*").applied_at is None
    assert Event.objects.get(router=router).cost == pytest.approx(1.0)
    repricing.apply_price_changes()  # the next run applies the edit
    assert ModelPrice.objects.get(model="acme-*").applied_at is not None
    assert Event.objects.get(router=router).cost == pytest.approx(2.0)
