"""Price lookup rules, the shipped price file and the import_prices command."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from tracking.models import ModelPrice
from tracking.pricing import PriceBook, load_price_file, price_event

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 1, tzinfo=UTC)


def book() -> PriceBook:
    return PriceBook(
        [
            ("gpt-4o", Decimal("0.0000025"), Decimal("0.00001"), T0),
            ("gpt-4o", Decimal("0.000002"), Decimal("0.000008"), T1),
            ("gpt-4o*", Decimal("0.000005"), Decimal("0.000005"), T0),
            ("gpt-4o-mini*", Decimal("0.00000015"), Decimal("0.0000006"), T0),
            ("strong", Decimal("0.00001"), Decimal("0.00003"), T0),
        ]
    )


def test_price__exact_name__price_in_force_at_the_time():
    assert book().price("gpt-4o", datetime(2024, 6, 1, tzinfo=UTC)).input == 2.5e-6
    assert book().price("gpt-4o", datetime(2025, 6, 1, tzinfo=UTC)).input == 2e-6
    assert book().price("gpt-4o", datetime(2023, 6, 1, tzinfo=UTC)) is None


def test_price__patterns__longest_match_wins():
    at = datetime(2024, 6, 1, tzinfo=UTC)
    assert book().price("gpt-4o-mini-2024-07-18", at).input == 1.5e-7
    assert book().price("gpt-4o-2024-08-06", at).input == 5e-6
    assert book().price("claude", at) is None


def test_price_event__unknown_model_no_estimate__unpriced_not_zero():
    cost = price_event(
        book(), model="claude", strong_model="strong", at=T1, prompt_tokens=5,
        completion_tokens=5, estimated_cost=None,
    )  # fmt: skip
    assert cost == (None, None)


def test_price_event__tokens__cost_and_strong_baseline():
    cost, baseline = price_event(
        book(), model="gpt-4o", strong_model="strong", at=T1, prompt_tokens=1000,
        completion_tokens=100, estimated_cost=99.0,
    )  # fmt: skip
    assert cost == pytest.approx(1000 * 2e-6 + 100 * 8e-6)
    assert baseline == pytest.approx(1000 * 1e-5 + 100 * 3e-5)


def test_shipped_price_file__prices_both_seed_models_in_a_fresh_database(db):
    assert ModelPrice.objects.filter(model="gpt-4-1106-preview").exists()
    assert ModelPrice.objects.filter(model="gpt-3.5-turbo").exists()
    seeded = ModelPrice.objects.get(model="gpt-3.5-turbo")
    assert seeded.input_per_token == Decimal("0.0000005")
    assert len(load_price_file("tracking/prices.yaml")) == ModelPrice.objects.count()


def test_import_prices__csv__stored_per_token(db, tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("model,input,output,effective_from\nacme-large,4,12,2025-02-01T00:00:00Z\n")

    call_command("import_prices", str(path), "--no-reprice")

    price = ModelPrice.objects.get(model="acme-large")
    assert price.input_per_token == Decimal("0.000004")
    assert price.output_per_token == Decimal("0.000012")
    assert price.applied_at is not None


def test_import_prices__yaml__stored(db, tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "effective_from: 2025-03-01\nprices:\n  - {model: acme-small, input: 0.2, output: 0.4}\n"
    )

    call_command("import_prices", str(path))

    assert ModelPrice.objects.get(model="acme-small").effective_from == datetime(
        2025, 3, 1, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "content",
    [
        "model,input,output\nacme,-1,2\n",
        "model,input,output\nacme,abc,2\n",
        "model,input\nacme,1\n",
    ],
)
def test_import_prices__bad_file__command_error_nothing_stored(db, tmp_path, content):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    before = ModelPrice.objects.count()

    with pytest.raises(CommandError):
        call_command("import_prices", str(path))

    assert ModelPrice.objects.count() == before
