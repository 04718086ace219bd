"""Threshold calibration: the threshold that sends a target share of calls to the strong model.

RouteLLM routes a call to the strong model when its strong win rate is at or above the
threshold, and its `calibrate_threshold` takes the (1 − target) quantile of the win rates of a
sample of prompts. We take the same quantile of the router's own stored win rates, read from the
win-rate histogram (tracking.winrates, 0.001 wide buckets; linear within the bucket), so a
proposal over millions of events costs one small GROUP BY.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from controlplane import services
from controlplane.actors import Actor
from controlplane.models import ConfigRevision, Router
from controlplane.webhooks.events import THRESHOLD_CALIBRATED
from controlplane.webhooks.outbox import emit_revision_event
from routing.config import KNOWN_DOMAINS
from tracking.models import WINRATE_BUCKETS
from tracking.winrates import BucketSums, winrate_histogram

MAX_DAYS = 366


def window_start(days: int, now: datetime | None = None) -> date:
    """The first UTC day of a window of `days` whole days ending today."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return today - timedelta(days=days - 1)


def bucket_counts(histogram: list[BucketSums]) -> list[int]:
    counts = [0] * WINRATE_BUCKETS
    for row in histogram:
        counts[row.bucket] += row.requests
    return counts


def share_at(counts: list[int], threshold: float) -> float:
    """Share of the calls with a win rate >= threshold (uniform within a bucket)."""
    total = sum(counts)
    if not total:
        return 0.0
    position = min(max(threshold, 0.0), 1.0) * WINRATE_BUCKETS
    k = min(int(position), WINRATE_BUCKETS - 1)
    above = sum(counts[k + 1 :]) + counts[k] * (1 - (position - k))
    return above / total


def propose_threshold(counts: list[int], target_strong_share: float) -> float:
    """The (1 − target) quantile of the win rates: share_at(counts, result) ≈ target."""
    total = sum(counts)
    wanted = target_strong_share * total
    above = 0.0  # calls in the buckets above bucket k
    for k in range(WINRATE_BUCKETS - 1, -1, -1):
        if above + counts[k] >= wanted and counts[k]:
            # Take the top (wanted - above) calls of bucket k: t = (k + u) / B.
            u = 1 - (wanted - above) / counts[k]
            return round((k + u) / WINRATE_BUCKETS, 5)
        above += counts[k]
    return 0.0


def next_threshold(
    current: float, proposed: float, *, low: float, high: float, max_step: float
) -> float:
    """The dynamic job's move: toward `proposed`, at most `max_step`, within [low, high]."""
    step = max(-max_step, min(max_step, proposed - current))
    return round(min(high, max(low, current + step)), 5)


def current_threshold(config: dict[str, Any], domain: str | None) -> float:
    """The threshold a domain's calls are routed with (its override's, else the router's)."""
    override = (config.get("domain_routing_overrides") or {}).get(domain or "", {})
    value = override.get("threshold") if isinstance(override, dict) else None
    return float(value if value is not None else config.get("threshold", 0.0))


def default_target(config: dict[str, Any]) -> float:
    """Target strong share = 1 − cost_optimization_target (CONTRACT §1)."""
    return round(1 - float(config.get("cost_optimization_target", 0.5)), 6)


@dataclass(frozen=True)
class Calibration:
    router: str
    domain: str | None
    days: int
    start: str
    target_strong_share: float
    sample_size: int
    min_sample: int
    current_threshold: float
    observed_strong_share: float  # what the window's calls actually did
    strong_share_at_current: float  # the window's win rates at today's threshold
    proposed_threshold: float | None
    strong_share_at_proposed: float | None
    refusal: str  # why there is no proposal ("" when there is one)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration(
    *,
    router: Router,
    days: int,
    target_strong_share: float | None = None,
    domain: str | None = None,
    min_sample: int | None = None,
    now: datetime | None = None,
) -> Calibration:
    """The proposal for `router` (one domain, or all its calls) from the last `days` days."""
    config = router.current_revision.config
    target = default_target(config) if target_strong_share is None else target_strong_share
    minimum = settings.ROUTEPLANE_CALIBRATION_MIN_SAMPLE if min_sample is None else min_sample
    start = window_start(days, now)
    histogram = winrate_histogram(router_id=router.pk, start=start, domain=domain)
    counts = bucket_counts(histogram)
    sample = sum(counts)
    strong = sum(row.requests for row in histogram if row.tier == "strong")
    current = current_threshold(config, domain)
    proposed = share = None
    refusal = ""
    if sample < minimum:
        where = f" for domain {domain}" if domain else ""
        refusal = (
            f"Only {sample} calls with a win rate{where} in the last {days} days; "
            f"calibration needs at least {minimum}. Widen the window or wait for traffic."
        )
    else:
        proposed = propose_threshold(counts, target)
        share = round(share_at(counts, proposed), 6)
    return Calibration(
        router=router.slug,
        domain=domain,
        days=days,
        start=start.isoformat(),
        target_strong_share=target,
        sample_size=sample,
        min_sample=minimum,
        current_threshold=current,
        observed_strong_share=round(strong / sample, 6) if sample else 0.0,
        strong_share_at_current=round(share_at(counts, current), 6),
        proposed_threshold=proposed,
        strong_share_at_proposed=share,
        refusal=refusal,
    )


def threshold_changes(config: dict[str, Any], domain: str | None, threshold: float) -> dict:
    """The config PATCH that sets the router's threshold, or one domain override's."""
    if domain is None:
        return {"threshold": threshold}
    overrides = {k: dict(v) for k, v in (config.get("domain_routing_overrides") or {}).items()}
    overrides.setdefault(domain, {})["threshold"] = threshold
    return {"domain_routing_overrides": overrides}


@transaction.atomic
def apply_calibration(
    *,
    router: Router,
    days: int,
    actor: Actor,
    target_strong_share: float | None = None,
    domain: str | None = None,
    expected_revision: int | None = None,
) -> tuple[ConfigRevision, Calibration]:
    """Publish the proposed threshold as an audited revision and emit `threshold.calibrated`.

    Raises ValidationError (below the minimum sample, or a domain that cannot carry an
    override), StaleRevision (If-Match) or ApprovalRequired (change policy), like update_config.
    """
    if domain is not None and domain not in KNOWN_DOMAINS:
        raise ValidationError(
            {"domain": [f"a threshold override needs a known domain ({', '.join(KNOWN_DOMAINS)})"]}
        )
    router, _ = services.locked_router(router)
    result = calibration(
        router=router, days=days, target_strong_share=target_strong_share, domain=domain
    )
    if result.proposed_threshold is None:
        raise ValidationError({"days": [result.refusal]})
    revision = publish_threshold(
        router=router,
        domain=domain,
        threshold=result.proposed_threshold,
        actor=actor,
        expected_revision=expected_revision,
        reason=calibration_reason(result),
        details=result.as_dict(),
    )
    return revision, result


def calibration_reason(result: Calibration) -> str:
    return (
        f"calibrated to {result.target_strong_share:.1%} strong from {result.sample_size} calls "
        f"over {result.days} days"
    )


def publish_threshold(
    *,
    router: Router,
    domain: str | None,
    threshold: float,
    actor: Actor,
    reason: str,
    details: dict[str, Any],
    expected_revision: int | None = None,
) -> ConfigRevision:
    """One config revision setting the (domain's) threshold, plus its webhook event; inside the
    caller's transaction."""
    config = router.current_revision.config
    revision = services.update_config(
        router=router,
        changes=threshold_changes(config, domain, threshold),
        actor=actor,
        expected_revision=expected_revision,
        reason=reason,
    )
    emit_revision_event(
        router=router,
        type=THRESHOLD_CALIBRATED,
        revision=revision,
        actor=actor,
        reason=reason,
        domain=domain,
        threshold=threshold,
        previous_threshold=current_threshold(config, domain),
        calibration=details,
    )
    return revision
