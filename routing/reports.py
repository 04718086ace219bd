"""Savings reports computed in the process (the SDK's local mode), with the server's field names.

Each event is priced by the shared rule (routing.costs) from the shipped price table at report
time, so an outcome recorded later re-prices it. The numbers of a group (the whole window, a
day, a domain, a model) are computed from sums exactly as the control plane's reports do:
money in USD, rates as fractions in [0, 1], 0 when there is no data; `average_quality` is None
when no quality was recorded. Domain breakdown: an event counts under its first listed domain
(lower-cased), "general" when it lists none. Latency percentiles here are exact (the server's
come from a histogram, within ~10 %).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from routing.costs import baseline_or_cost, price_event
from routing.events import EventIn, primary_domain
from routing.prices import PriceBook


@dataclass
class RoutingMetrics:
    """A cost-savings report (money in USD, rates as fractions in [0, 1])."""

    total_requests: int = 0
    routellm_requests: int = 0
    estimated_savings: float = 0.0
    success_rate: float = 0.0
    actual_cost: float = 0.0
    baseline_cost: float = 0.0
    unpriced_requests: int = 0
    priced_requests: int = 0
    savings_percent: float = 0.0
    routellm_usage_rate: float = 0.0
    strong_share: float = 0.0
    weak_share: float = 0.0
    fallback_rate: float = 0.0
    average_cost: float = 0.0
    average_latency_ms: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    average_quality: float | None = None
    quality_samples: int = 0
    period_days: int = 7
    by_day: list[dict[str, Any]] = field(default_factory=list)
    by_domain: list[dict[str, Any]] = field(default_factory=list)
    by_model: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoutingMetrics:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)  # one object per kept event, not two: less for the GC to scan
class TrackedEvent:
    """An event as the local mode keeps it: the validated event plus its outcome's quality."""

    event: EventIn
    quality: float | None = None
    outcome: dict[str, Any] | None = None  # the outcome recorded for it (one per event)


@dataclass
class Sums:
    requests: int = 0
    successes: int = 0
    fallbacks: int = 0
    routellm: int = 0
    priced: int = 0
    cost: float = 0.0
    baseline: float = 0.0
    latency_count: int = 0
    latency_sum: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    strong: int = 0
    weak: int = 0
    quality_count: int = 0
    quality_sum: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, tracked: TrackedEvent, cost: float | None, baseline: float | None) -> None:
        event = tracked.event
        self.requests += 1
        self.successes += event.success is not False
        self.fallbacks += bool(event.fallback_used)
        self.routellm += event.routing_method == "routellm"
        if cost is not None:
            self.priced += 1
            self.cost += cost
            self.baseline += baseline_or_cost(cost, baseline)
        if event.latency_ms is not None:
            self.latency_count += 1
            self.latency_sum += event.latency_ms
            self.latencies.append(event.latency_ms)
        self.prompt_tokens += event.prompt_tokens or 0
        self.completion_tokens += event.completion_tokens or 0
        self.strong += event.model_tier == "strong"
        self.weak += event.model_tier == "weak"
        if tracked.quality is not None:
            self.quality_count += 1
            self.quality_sum += tracked.quality


def ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def metrics(sums: Sums) -> dict[str, Any]:
    """The report numbers of one group of sums (the control plane's formulas)."""
    total = sums.requests
    savings = sums.baseline - sums.cost
    return {
        "total_requests": total,
        "routellm_requests": sums.routellm,
        "routellm_usage_rate": ratio(sums.routellm, total),
        "success_rate": ratio(sums.successes, total),
        "fallback_rate": ratio(sums.fallbacks, total),
        "actual_cost": sums.cost,
        "baseline_cost": sums.baseline,
        "estimated_savings": savings,
        "savings_percent": 100.0 * ratio(savings, sums.baseline),
        "priced_requests": sums.priced,
        "unpriced_requests": total - sums.priced,
        "strong_share": ratio(sums.strong, total),
        "weak_share": ratio(sums.weak, total),
        "average_cost": ratio(sums.cost, sums.priced),
        "average_latency_ms": ratio(sums.latency_sum, sums.latency_count),
        "prompt_tokens": sums.prompt_tokens,
        "completion_tokens": sums.completion_tokens,
        "average_quality": (sums.quality_sum / sums.quality_count if sums.quality_count else None),
        "quality_samples": sums.quality_count,
    }


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return float(ordered[index])


def main_tier(sums: Sums) -> str:
    other = sums.requests - sums.strong - sums.weak
    return max((sums.strong, "strong"), (sums.weak, "weak"), (other, "other"))[1]


def local_report(
    events: Iterable[TrackedEvent],
    *,
    period_days: int,
    strong_model: str,
    book: PriceBook,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The savings report of the events of the last `period_days` days (rolling, UTC)."""
    now = now or datetime.now(UTC)
    since = now - timedelta(days=period_days)
    total = Sums()
    days: dict[date, Sums] = {}
    domains: dict[str, Sums] = {}
    models: dict[str, Sums] = {}
    for tracked in events:
        event = tracked.event
        if event.timestamp < since:
            continue
        cost, baseline = price_event(
            book,
            model=event.selected_model,
            strong_model=strong_model,
            at=event.timestamp,
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            estimated_cost=event.estimated_cost,
        )
        for group in (
            total,
            days.setdefault(event.timestamp.astimezone(UTC).date(), Sums()),
            domains.setdefault(primary_domain(event.domains), Sums()),
            models.setdefault(event.selected_model, Sums()),
        ):
            group.add(tracked, cost, baseline)
    day, last_day = since.astimezone(UTC).date(), now.astimezone(UTC).date()
    while day <= last_day:  # every day of the window, as the server lists them
        days.setdefault(day, Sums())
        day += timedelta(days=1)
    return (
        {"period_days": period_days}
        | metrics(total)
        | {
            "latency_p50_ms": percentile(total.latencies, 0.50),
            "latency_p95_ms": percentile(total.latencies, 0.95),
            "by_day": [{"day": d.isoformat()} | metrics(days[d]) for d in sorted(days)],
            "by_domain": sorted(
                ({"domain": name} | metrics(sums) for name, sums in domains.items()),
                key=lambda row: (-row["total_requests"], row["domain"]),
            ),
            "by_model": sorted(
                (
                    {"model": name, "tier": main_tier(sums)} | metrics(sums)
                    for name, sums in models.items()
                ),
                key=lambda row: (-row["total_requests"], row["model"]),
            ),
        }
    )
