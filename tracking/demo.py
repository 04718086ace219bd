"""Synthetic routing events for the demo router, so the savings page has something to show.

Deterministic (seeded RNG, event ids derived from the router and index): a second run adds
nothing, because ingestion stores each event_id at most once and the outcomes that carry the
demo's quality scores are then duplicates.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from controlplane.models import Router
from tracking.ingest import record_events
from tracking.outcome_ingest import record_outcomes
from tracking.rollups import rollup_events

DOMAINS = ["technical", "general", "creative", "medical", "legal", "scientific"]
EVENTS_PER_DAY = 120
BATCH = 1000  # the ingestion API's limit per request
RATED_SHARE = 0.6  # share of demo calls whose outcome carries a quality score


def _events(router: Router, days: int, now: datetime) -> list[dict[str, Any]]:
    rng = random.Random(f"routeplane-demo:{router.slug}")
    config = router.current_revision.config
    strong, weak = config["strong_model"], config["weak_model"]
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"routeplane-demo/{router.slug}")
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    events = []
    for index in range(days * EVENTS_PER_DAY):
        at = start + timedelta(seconds=rng.uniform(0, days * 86400))
        if at >= now:
            continue
        domain = rng.choice(DOMAINS)
        routed = domain == "technical" and rng.random() < 0.8
        weak_pick = routed and rng.random() < 0.55
        failed = rng.random() < 0.015
        prompt = rng.randint(150, 1800)
        events.append(
            {
                "event_id": str(uuid.uuid5(namespace, str(index))),
                "timestamp": at.isoformat(),
                "selected_model": weak if weak_pick else strong,
                "model_tier": "weak" if weak_pick else "strong",
                "routing_method": "routellm" if routed else "default",
                "domains": [domain],
                "strong_win_rate": round(rng.random(), 4) if routed else None,
                "threshold": config["threshold"] if routed else None,
                "prompt_tokens": prompt,
                "completion_tokens": rng.randint(50, 700),
                "latency_ms": round(rng.lognormvariate(6.4 if weak_pick else 7.0, 0.35), 1),
                "success": not failed,
                "fallback_used": routed and failed,
                "error": "upstream timeout" if failed else None,
                "text_length": prompt * 4,
            }
        )
    return events


def _quality_outcomes(router: Router, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Quality scores for some of the demo calls, the weak model's a little lower."""
    rng = random.Random(f"routeplane-demo-quality:{router.slug}")
    outcomes = []
    for event in events:
        if rng.random() < RATED_SHARE:
            low = 0.72 if event["model_tier"] == "weak" else 0.8
            quality = round(rng.uniform(low, 1.0), 2)
            outcomes.append({"event_id": event["event_id"], "quality": quality})
    return outcomes


def seed_events(*, router: Router, days: int) -> int:
    """Ingest `days` of demo events; returns how many were stored."""
    now = datetime.now(UTC)
    events = _events(router, days, now)
    accepted = 0
    for offset in range(0, len(events), BATCH):
        result = record_events(
            router_id=router.pk, payload={"events": events[offset : offset + BATCH]}, now=now
        )
        accepted += result.accepted
    outcomes = _quality_outcomes(router, events)
    for offset in range(0, len(outcomes), BATCH):
        batch = outcomes[offset : offset + BATCH]
        record_outcomes(router_id=router.pk, payload={"outcomes": batch})
    # Fold the new rows into the rollups now rather than at the next beat tick.
    rollup_events()
    return accepted
