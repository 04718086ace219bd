"""The one cost rule, used by the control plane (ingestion, re-pricing) and the SDK's local mode.

For one event:
- tokens known (both prompt_tokens and completion_tokens given; one alone is "missing tokens",
  since counting the other as 0 would understate the cost) and the model has a price at the
  event's time: cost = prompt x input price + completion x output price;
- otherwise the client's `estimated_cost` when given; otherwise the event is *unpriced*
  (cost and baseline None, never $0).
- baseline = the same tokens at the strong model's price. When that cannot be computed (missing
  tokens, no or unpriced strong model) the baseline is the cost itself if the event used the
  strong model, else None: it is not guessed (e.g. from a blended price ratio). Reports count
  such an event at its cost on both sides (`baseline_or_cost`), so it claims no savings.
"""

from __future__ import annotations

from datetime import datetime

from routing.prices import PriceBook


def price_event(
    book: PriceBook,
    *,
    model: str,
    strong_model: str | None,
    at: datetime,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    estimated_cost: float | None,
) -> tuple[float | None, float | None]:
    """(cost, baseline) of one event, per the module's rule; (None, None) when unpriced."""
    tokens = None
    if prompt_tokens is not None and completion_tokens is not None:
        tokens = (prompt_tokens, completion_tokens)
    price = book.price(model, at) if tokens else None
    cost = tokens[0] * price.input + tokens[1] * price.output if tokens and price else None
    if cost is None:
        cost = estimated_cost
    if cost is None:
        return None, None
    strong = book.price(strong_model, at) if tokens and strong_model else None
    if tokens and strong:
        return cost, tokens[0] * strong.input + tokens[1] * strong.output
    if strong_model and model == strong_model:
        return cost, cost
    return cost, None


def baseline_or_cost(cost: float, baseline: float | None) -> float:
    """What a report sums as a priced event's baseline: its baseline, else its own cost."""
    return cost if baseline is None else baseline
