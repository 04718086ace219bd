"""Prices and the cost rule, as the server uses them: defined once in the SDK (routing.prices,
routing.costs) so a router's local reports and the control plane's agree to the cent."""

from __future__ import annotations

from routing.costs import baseline_or_cost, price_event
from routing.prices import (
    PER_MILLION,
    SHIPPED_PRICE_FILE,
    Price,
    PriceBook,
    PriceRow,
    load_price_file,
    pattern_specificity,
)

__all__ = [
    "PER_MILLION",
    "SHIPPED_PRICE_FILE",
    "Price",
    "PriceBook",
    "PriceRow",
    "baseline_or_cost",
    "load_price_file",
    "pattern_specificity",
    "price_event",
]
