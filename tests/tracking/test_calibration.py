"""Calibration: the proposed threshold sends the target share of calls to the strong model."""

from __future__ import annotations

import random

import pytest
from django.core.exceptions import ValidationError

from controlplane.actors import Actor
from controlplane.models import AuditEntry
from controlplane.services import StaleRevision, update_config
from controlplane.webhooks.models import WebhookEvent
from tests.tracking.winrate_events import beta_rates, ingest_and_fold, routed_events
from tracking.calibration import (
    apply_calibration,
    bucket_counts,
    calibration,
    next_threshold,
    propose_threshold,
)
from tracking.models import WINRATE_BUCKETS
from tracking.winrates import BucketSums

OPERATOR = Actor("user:calibrating-operator")


def histogram_of(rates: list[float]) -> list[BucketSums]:
    counts = [0] * WINRATE_BUCKETS
    for rate in rates:
        counts[min(WINRATE_BUCKETS - 1, int(rate * WINRATE_BUCKETS))] += 1
    return [
        BucketSums(b, "weak", False, n, 0.0, 0.0, 0, 0, 0, 0.0) for b, n in enumerate(counts) if n
    ]


def skewed(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() ** 2 for _ in range(count)]  # most mass near 0, like real win rates


def bimodal(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [min(1.0, max(0.0, rng.gauss(0.2 if i % 3 else 0.8, 0.05))) for i in range(count)]


DISTRIBUTIONS = {
    "beta(2,5)": lambda: beta_rates(20_000, 2, 5, seed=3),
    "beta(5,2)": lambda: beta_rates(20_000, 5, 2, seed=4),
    "uniform": lambda: beta_rates(20_000, 1, 1, seed=5),
    "skewed": lambda: skewed(20_000, seed=6),
    "bimodal": lambda: bimodal(20_000, seed=7),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("target", [0.05, 0.2, 0.35, 0.5, 0.8, 0.95])
def test_propose_threshold__routes_the_target_share_strong_within_2_points(name, target):
    rates = DISTRIBUTIONS[name]()
    threshold = propose_threshold(bucket_counts(histogram_of(rates)), target)

    share = sum(rate >= threshold for rate in rates) / len(rates)  # RouteLLM's rule, raw rates
    assert abs(share - target) <= 0.02, (name, target, threshold, share)


def test_propose_threshold__all_or_none_strong():
    rates = beta_rates(5000, 2, 2)
    counts = bucket_counts(histogram_of(rates))
    assert all(rate >= propose_threshold(counts, 1.0) for rate in rates)
    assert not any(rate >= propose_threshold(counts, 0.0) for rate in rates)


@pytest.mark.parametrize(
    ("current", "proposed", "expected"),
    [
        (0.30, 0.50, 0.35),  # a step of at most 0.05
        (0.30, 0.28, 0.28),  # a small move is taken whole
        (0.30, 0.00, 0.25),
        (0.12, 0.00, 0.10),  # never below the lower bound
        (0.88, 1.00, 0.90),  # never above the upper bound
        (0.95, 0.95, 0.90),  # outside the bounds: brought back inside
    ],
)
def test_next_threshold__respects_step_and_bounds(current, proposed, expected):
    assert next_threshold(current, proposed, low=0.1, high=0.9, max_step=0.05) == expected


@pytest.mark.django_db(transaction=True)
def test_calibration__from_stored_events_per_router_and_domain(router):
    legal = beta_rates(1500, 2, 5, seed=1)
    medical = beta_rates(1000, 5, 2, seed=2)
    ingest_and_fold(router, routed_events(legal, threshold=0.3, domain="legal"))
    ingest_and_fold(router, routed_events(medical, threshold=0.3, domain="medical", seed=1))
    update_config(router=router, changes={"cost_optimization_target": 0.7}, actor=OPERATOR)
    router.refresh_from_db()

    whole = calibration(router=router, days=7, min_sample=100)
    assert whole.sample_size == 2500
    assert whole.target_strong_share == pytest.approx(0.3)
    share = sum(r >= whole.proposed_threshold for r in legal + medical) / 2500
    assert abs(share - 0.3) <= 0.02
    assert whole.observed_strong_share == pytest.approx(
        sum(r >= 0.3 for r in legal + medical) / 2500
    )

    one = calibration(
        router=router, days=7, domain="medical", target_strong_share=0.5, min_sample=100
    )
    assert one.sample_size == 1000
    assert abs(sum(r >= one.proposed_threshold for r in medical) / 1000 - 0.5) <= 0.02

    few = calibration(router=router, days=7, domain="legal", min_sample=2000)
    assert few.proposed_threshold is None
    assert "Only 1500 calls" in few.refusal and "at least 2000" in few.refusal


@pytest.mark.django_db(transaction=True)
def test_apply_calibration__one_audited_revision_and_a_webhook_event(router, settings):
    settings.ROUTEPLANE_CALIBRATION_MIN_SAMPLE = 100
    rates = beta_rates(1200, 2, 4, seed=8)
    ingest_and_fold(router, routed_events(rates, threshold=0.3, domain="technical"))
    before = router.current_revision.number

    revision, result = apply_calibration(
        router=router, days=7, target_strong_share=0.25, domain="technical", actor=OPERATOR,
        expected_revision=before,
    )  # fmt: skip

    assert revision.number == before + 1 and revision.actor == OPERATOR.label
    override = revision.config["domain_routing_overrides"]["technical"]
    assert override["threshold"] == result.proposed_threshold
    assert revision.config["threshold"] == 0.11593  # the router's own threshold is untouched
    audit = AuditEntry.objects.get(router=router, revision_number=revision.number)
    assert audit.action == "config.update" and "calibrated to 25.0% strong" in audit.reason
    event = WebhookEvent.objects.get(router=router, type="threshold.calibrated")
    assert event.data["threshold"] == result.proposed_threshold
    assert event.data["domain"] == "technical" and event.data["revision"] == revision.number

    with pytest.raises(StaleRevision):
        apply_calibration(router=router, days=7, actor=OPERATOR, expected_revision=before)
    with pytest.raises(ValidationError) as refused:
        apply_calibration(router=router, days=7, domain="legal", actor=OPERATOR)
    assert "Only 0 calls" in refused.value.message_dict["days"][0]
    assert router.revisions.count() == before + 1
