"""Price lookup rules, the shipped price file and the import_prices command."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from tracking.models import ModelPrice
from tracking.pricing import SHIPPED_PRICE_FILE, PriceBook, load_price_file, price_event

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


def test_price__patterns__most_literal_characters_win_not_the_longest_text():
    # `gpt-*-*-*` is the longer text but pins fewer characters than `gpt-4o-*`.
    generic = PriceBook(
        [
            ("gpt-*-*-*", Decimal("0.000001"), Decimal("0.000001"), T0),
            ("gpt-4o-*", Decimal("0.000002"), Decimal("0.000002"), T0),
        ]
    )

    assert generic.price("gpt-4o-2024-08-06", T1).input == 2e-6


def test_price__equally_specific_patterns__same_answer_whatever_the_row_order():
    rows = [
        ("gpt-*", Decimal("0.000001"), Decimal("0.000001"), T0),
        ("*mini", Decimal("0.000002"), Decimal("0.000002"), T0),
    ]

    assert PriceBook(rows).price("gpt-mini", T1) == PriceBook(rows[::-1]).price("gpt-mini", T1)


def shipped_book() -> PriceBook:
    return PriceBook(
        (row.model, row.input_per_token, row.output_per_token, row.effective_from)
        for row in load_price_file(SHIPPED_PRICE_FILE)
    )


@pytest.mark.parametrize(
    ("model", "per_million"),
    [
        ("gpt-4-1106-preview", (10, 30)),
        ("gpt-3.5-turbo", (0.5, 1.5)),
        ("gpt-3.5-turbo-0125", (0.5, 1.5)),
        ("gpt-3.5-turbo-16k", (3, 4)),
        ("gpt-3.5-turbo-16k-0613", (3, 4)),
        ("gpt-3.5-turbo-instruct", (1.5, 2)),
        ("gpt-3.5-turbo-instruct-0914", (1.5, 2)),
        ("gpt-4o", (2.5, 10)),
        ("gpt-4o-2024-05-13", (5, 15)),
        ("gpt-4o-2024-08-06", (2.5, 10)),
        ("chatgpt-4o-latest", (5, 15)),
        ("o1-mini", (1.1, 4.4)),
        ("o1-mini-2024-09-12", (1.1, 4.4)),
        ("claude-opus-4-20250514", (15, 75)),
        ("claude-opus-4-1-20250805", (15, 75)),
        ("claude-opus-4-5", (5, 25)),
        ("claude-opus-4-5-20251101", (5, 25)),
        ("claude-haiku-4-5-20251001", (1, 5)),
        ("meta-llama/Llama-4-Scout-17B-16E-Instruct", (0.18, 0.59)),
        ("llama-4-scout-17b-16e-instruct", (0.18, 0.59)),
        ("meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8", (0.27, 0.85)),
        ("meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo", (3, 3)),
        ("llama-3.1-405b-instruct", (3, 3)),
        ("mistral-small-latest", (0.1, 0.3)),
        ("mistral-small-2503", (0.1, 0.3)),
        ("mistral-medium-2505", (0.4, 2)),
        ("codestral-2501", (0.3, 0.9)),
    ],
)
def test_shipped_price_file__list_prices(model, per_million):
    price = shipped_book().price(model, datetime.now(UTC))

    assert price is not None, model
    assert (price.input * 1e6, price.output * 1e6) == pytest.approx(per_million)


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


@pytest.mark.parametrize("missing", ["prompt_tokens", "completion_tokens"])
def test_price_event__one_token_count_missing__estimate_used_not_zero_tokens(missing):
    tokens = {"prompt_tokens": 1000, "completion_tokens": 100} | {missing: None}

    priced = price_event(
        book(), model="gpt-4o", strong_model="strong", at=T1, estimated_cost=0.5, **tokens
    )
    unpriced = price_event(
        book(), model="gpt-4o", strong_model="strong", at=T1, estimated_cost=None, **tokens
    )

    # Missing tokens: cost is the client's estimate; the baseline cannot be computed.
    assert priced == (0.5, None)
    assert unpriced == (None, None)


def test_price_event__no_tokens__baseline_not_guessed_from_a_price_ratio():
    weak = price_event(
        book(), model="gpt-4o", strong_model="strong", at=T1, prompt_tokens=None,
        completion_tokens=None, estimated_cost=0.002,
    )  # fmt: skip
    strong = price_event(
        book(), model="strong", strong_model="strong", at=T1, prompt_tokens=None,
        completion_tokens=None, estimated_cost=0.002,
    )  # fmt: skip

    assert weak == (0.002, None)
    assert strong == (0.002, 0.002)  # the strong model itself: baseline = cost


def test_price_event__tokens_but_strong_model_unpriced__no_baseline():
    assert price_event(
        book(), model="gpt-4o", strong_model="unknown-strong", at=T1, prompt_tokens=1000,
        completion_tokens=0, estimated_cost=None,
    ) == (pytest.approx(2e-3), None)  # fmt: skip


def test_shipped_price_file__prices_both_seed_models_in_a_fresh_database(db):
    assert ModelPrice.objects.filter(model="gpt-4-1106-preview").exists()
    assert ModelPrice.objects.filter(model="gpt-3.5-turbo").exists()
    seeded = ModelPrice.objects.get(model="gpt-3.5-turbo")
    assert seeded.input_per_token == Decimal("0.0000005")
    assert len(load_price_file(SHIPPED_PRICE_FILE)) == ModelPrice.objects.count()


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


def test_import_prices__shipped_file_on_an_older_database__corrects_only_what_changed(db):
    # A database seeded from an older file: a wrong price, a missing row, all applied.
    ModelPrice.objects.update(applied_at=datetime(2024, 1, 1, tzinfo=UTC))
    ModelPrice.objects.filter(model="llama-3.1-405b*").update(
        input_per_token=Decimal("0.0000035"), output_per_token=Decimal("0.0000035")
    )
    ModelPrice.objects.filter(model="claude-opus-4-5*").delete()

    call_command("import_prices", str(SHIPPED_PRICE_FILE))

    assert ModelPrice.objects.count() == len(load_price_file(SHIPPED_PRICE_FILE))
    fixed = ModelPrice.objects.get(model="llama-3.1-405b*")
    assert fixed.input_per_token == Decimal("0.000003")
    assert ModelPrice.objects.get(model="claude-opus-4-5*").input_per_token == Decimal("0.000005")
    pending = set(ModelPrice.objects.filter(applied_at=None).values_list("model", flat=True))
    # Unchanged rows are left alone: only the corrected and the new row re-price events.
    assert pending == {"llama-3.1-405b*", "claude-opus-4-5*"}
