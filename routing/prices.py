"""Model prices: the shipped price file and lookup by model and time (plain Python, no ORM).

One price table for both sides: the control plane loads `SHIPPED_PRICE_FILE` into its database
(a data migration; `import_prices` for updates) and builds a `PriceBook` from its rows; the SDK's
local mode builds one from the same file (`shipped_price_book`). Prices in a file are USD per 1M
tokens; a `PriceRow` holds them per token. The cost rule that uses them is `routing.costs`.
"""

from __future__ import annotations

import bisect
import csv
import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

PER_MILLION = Decimal(1_000_000)
SHIPPED_PRICE_FILE = Path(__file__).resolve().parent / "prices.yaml"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PriceRow:
    model: str
    input_per_token: Decimal
    output_per_token: Decimal
    effective_from: datetime
    source: str = ""


@dataclass(frozen=True)
class Price:
    input: float
    output: float


def _parse_time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{where}: effective_from {value!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_per_million(value: Any, field: str, where: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"{where}: {field} {value!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{where}: {field} must be a number >= 0")
    return amount / PER_MILLION


def _row(item: dict[str, Any], defaults: dict[str, Any], where: str) -> PriceRow:
    model = str(item.get("model") or "").strip()
    if not model:
        raise ValueError(f"{where}: model is required")
    effective = item.get("effective_from") or defaults.get("effective_from")
    if not effective:
        raise ValueError(f"{where}: effective_from is required")
    for field in ("input", "output"):
        if item.get(field) in (None, ""):
            raise ValueError(f"{where}: {field} (USD per 1M tokens) is required")
    return PriceRow(
        model=model,
        input_per_token=_parse_per_million(item["input"], "input", where),
        output_per_token=_parse_per_million(item["output"], "output", where),
        effective_from=_parse_time(effective, where),
        source=str(item.get("source") or defaults.get("source") or "")[:200],
    )


def load_price_file(path: str | Path) -> list[PriceRow]:
    """Read a price file: YAML (`prices:` list) or CSV (model,input,output[,effective_from,source]).

    Prices in the file are USD per 1M tokens; rows come back per token. Raises ValueError naming
    the bad row.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        missing = {"model", "input", "output"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path.name}: missing columns {sorted(missing)}")
        defaults = {"effective_from": datetime.now(UTC)}
        return [
            _row(item, defaults, f"{path.name} line {index}")
            for index, item in enumerate(reader, start=2)
        ]
    import yaml  # only price files need PyYAML

    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict) or not isinstance(data.get("prices"), list):
        raise ValueError(f"{path.name}: expected a mapping with a `prices:` list")
    defaults = {"effective_from": data.get("effective_from") or datetime.now(UTC)}
    defaults["source"] = data.get("source", "")
    rows = []
    for index, item in enumerate(data["prices"]):
        if not isinstance(item, dict):
            raise ValueError(f"{path.name} prices[{index}]: expected a mapping")
        rows.append(_row(item, defaults, f"{path.name} prices[{index}]"))
    return rows


_WILDCARD = re.compile(r"\*|\?|\[[^\]]*\]")


def pattern_specificity(pattern: str) -> tuple[int, int, str]:
    """Sort key of a glob pattern, most specific first: more literal characters, then fewer
    `*`, then the text itself, so the order never depends on the order rows were read in.

    Literal characters, not the length: `gpt-*-*-*` is longer than `gpt-4o-*` but pins less.
    """
    wildcards = _WILDCARD.findall(pattern)
    literal = len(_WILDCARD.sub("", pattern))
    return -literal, wildcards.count("*"), pattern


class PriceBook:
    """Price lookup by model and time: exact names first, then the most specific matching
    pattern (see `pattern_specificity`)."""

    def __init__(self, rows: Iterable[tuple[str, Any, Any, datetime]]) -> None:
        by_model: dict[str, list[tuple[datetime, Price]]] = {}
        for model, input_price, output_price, effective_from in rows:
            price = Price(float(input_price), float(output_price))
            by_model.setdefault(model, []).append((effective_from, price))
        self._exact: dict[str, tuple[list[datetime], list[Price]]] = {}
        self._patterns: list[tuple[str, tuple[list[datetime], list[Price]]]] = []
        for model, entries in by_model.items():
            entries.sort(key=lambda entry: entry[0])
            series = ([e[0] for e in entries], [e[1] for e in entries])
            if any(ch in model for ch in "*?["):
                self._patterns.append((model, series))
            else:
                self._exact[model] = series
        self._patterns.sort(key=lambda item: pattern_specificity(item[0]))
        self._resolved: dict[str, tuple[list[datetime], list[Price]] | None] = {}

    def _series(self, model: str) -> tuple[list[datetime], list[Price]] | None:
        if model in self._resolved:
            return self._resolved[model]
        series = self._exact.get(model)
        if series is None:
            for pattern, candidate in self._patterns:
                if fnmatch.fnmatchcase(model, pattern):
                    series = candidate
                    break
        self._resolved[model] = series
        return series

    def price(self, model: str | None, at: datetime) -> Price | None:
        if not model:
            return None
        series = self._series(model)
        if series is None:
            return None
        times, prices = series
        index = bisect.bisect_right(times, at) - 1
        return prices[index] if index >= 0 else None


@functools.cache
def shipped_price_book() -> PriceBook:
    """The shipped price file as a PriceBook (read once per process)."""
    return price_book_from_rows(load_price_file(SHIPPED_PRICE_FILE))


def price_book_from_rows(rows: Iterable[PriceRow]) -> PriceBook:
    return PriceBook(
        (row.model, row.input_per_token, row.output_per_token, row.effective_from) for row in rows
    )


def price_book_from_table(table: Mapping[str, tuple[float, float]]) -> PriceBook:
    """A PriceBook from {model or pattern: (input, output) USD per 1M tokens}, valid always."""
    return PriceBook(
        (
            model,
            Decimal(str(input_price)) / PER_MILLION,
            Decimal(str(output_price)) / PER_MILLION,
            EPOCH,
        )
        for model, (input_price, output_price) in table.items()
    )
