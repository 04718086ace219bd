"""Test helpers: routed events with chosen strong win rates, ingested and rolled up."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from tests.tracking.conftest import make_event
from tracking.ingest import record_events
from tracking.rollups import rollup_events

STRONG, WEAK = "gpt-4-1106-preview", "gpt-3.5-turbo"


def routed_events(
    win_rates: list[float],
    *,
    threshold: float,
    domain: str = "legal",
    at: datetime | None = None,
    seed: int = 0,
) -> list[dict]:
    """One event per win rate, routed as RouteLLM would at `threshold` (strong when >=)."""
    rng = random.Random(seed)
    at = at or datetime.now(UTC) - timedelta(minutes=5)
    events = []
    for i, rate in enumerate(win_rates):
        strong = rate >= threshold
        events.append(
            make_event(
                timestamp=at - timedelta(seconds=i),
                selected_model=STRONG if strong else WEAK,
                model_tier="strong" if strong else "weak",
                routing_method="routellm",
                domains=[domain],
                strong_win_rate=rate,
                threshold=threshold,
                prompt_tokens=rng.randint(100, 1500),
                completion_tokens=rng.randint(20, 600),
            )
        )
    return events


def ingest_and_fold(router, events: list[dict]) -> None:
    for start in range(0, len(events), 1000):
        result = record_events(
            router_id=router.pk, payload={"events": events[start : start + 1000]}
        )
        assert not result.rejected, result.rejected[:3]
    rollup_events()


def beta_rates(count: int, a: float, b: float, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.betavariate(a, b) for _ in range(count)]
