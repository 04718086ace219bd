"""DomainRouter with the real routellm Controller (the offline `random` router)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from routing import DomainRouter, FeatureFlags, RouteLLMConfig, RouterType, RoutingDecision
from routing.domain_router import detect_domain
from routing.evaluation import ROUTELLM_ENABLED, bucket, safe_default_document
from routing.tracker import CostTracker
from tests.routing.doubles import DocumentFlags, RecordingTracker

pytest.importorskip("routellm")
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _local_mode(monkeypatch):
    monkeypatch.delenv("ROUTEPLANE_URL", raising=False)
    monkeypatch.delenv("ROUTEPLANE_API_KEY", raising=False)


def _route(router: DomainRouter, text: str, **kwargs: Any) -> RoutingDecision:
    return asyncio.run(router.route_by_domain(text, **kwargs))


def _routing_config(**changes: Any) -> RouteLLMConfig:
    return RouteLLMConfig(enabled=True, router_type=RouterType.RANDOM, **changes)


@pytest.mark.parametrize(
    ("text", "domain"),
    [
        ("The patient shows symptoms of a rare disease", "medical"),
        ("Review this contract clause for liability", "legal"),
        ("Fix the bug in this Python function", "technical"),
        ("Write a poem about the sea", "creative"),
        ("Explain the quantum physics experiment", "scientific"),
        ("What time is it?", None),
    ],
)
def test_detect_domain__keywords(text, domain):
    assert detect_domain(text) == domain


def test_routing_off__default_model__tracked_as_default():
    tracker = RecordingTracker()
    router = DomainRouter(RouteLLMConfig(), flags=FeatureFlags(), tracker=tracker)

    decision = _route(router, "Fix the bug in this Python function")

    assert decision.routed is False
    assert decision.model == "gpt-4-1106-preview"
    assert decision.tier == "strong"
    assert decision.domain == "technical"
    assert decision.event_id == "event-1"
    assert tracker.calls[0]["routing_method"] == "default"
    assert tracker.calls[0]["domains"] == ["technical"]


def test_routellm_enabled__random_router__win_rate_against_threshold():
    flags = FeatureFlags()
    flags.enable(FeatureFlags.ROUTELLM_ENABLED)
    tracker = RecordingTracker()
    router = DomainRouter(_routing_config(threshold=0.5), flags=flags, tracker=tracker)

    decisions = [_route(router, f"question number {i}") for i in range(30)]

    assert all(d.routed and not d.fallback_used for d in decisions)
    for d in decisions:
        assert 0.0 <= d.strong_win_rate <= 1.0
        assert d.model == ("gpt-4-1106-preview" if d.strong_win_rate >= 0.5 else "gpt-3.5-turbo")
        assert d.tier == ("strong" if d.strong_win_rate >= 0.5 else "weak")
    assert {d.tier for d in decisions} == {"strong", "weak"}
    call = tracker.calls[0]
    assert call["routing_method"] == "routellm"
    assert call["threshold"] == 0.5
    assert call["strong_win_rate"] == decisions[0].strong_win_rate
    assert call["model_tier"] == decisions[0].tier
    assert call["latency_ms"] >= 0


def test_domain_flag__only_that_domain_routes__override_threshold_used():
    flags = FeatureFlags()
    flags.enable(FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN)
    config = _routing_config(domain_routing_overrides={"technical": {"threshold": 0.0}})
    router = DomainRouter(config, flags=flags, tracker=RecordingTracker())

    technical = _route(router, "Fix the bug in this Python function")
    legal = _route(router, "Review this contract clause")
    forced = _route(router, "anything at all", domain_override="technical")

    assert technical.routed and technical.threshold == 0.0 and technical.tier == "strong"
    assert legal.routed is False
    assert forced.domain == "technical" and forced.routed


def test_routellm_error__falls_back_to_domain_override_model(tmp_path):
    flags = FeatureFlags()
    flags.enable(FeatureFlags.ROUTELLM_ENABLED)
    config = RouteLLMConfig(
        enabled=True,
        router_type=RouterType.MATRIX_FACTORIZATION,
        domain_routing_overrides={"legal": {"default_model": "legal-safe-model"}},
    )
    tracker = RecordingTracker()
    # A checkpoint that does not exist (and HF offline): the mf router cannot be built.
    router = DomainRouter(
        config,
        flags=flags,
        tracker=tracker,
        controller_config={"mf": {"checkpoint_path": str(tmp_path / "missing")}},
    )

    legal = _route(router, "Review this contract clause for liability")
    other = _route(router, "What time is it?")

    assert legal.fallback_used and legal.model == "legal-safe-model" and legal.tier == "other"
    assert other.fallback_used and other.model == "gpt-4-1106-preview"
    assert legal.routed is False
    assert tracker.calls[0]["routing_method"] == "fallback"
    assert tracker.calls[0]["fallback_used"] is True
    assert tracker.calls[0]["error"]


def test_detector_error__request_still_routed_without_domain():
    def broken(text: str) -> str:
        raise RuntimeError("detector bug")

    router = DomainRouter(
        RouteLLMConfig(), flags=FeatureFlags(), tracker=RecordingTracker(), detector=broken
    )

    decision = _route(router, "hello")

    assert decision.domain is None and decision.model == "gpt-4-1106-preview"


def test_key__default_is_text_hash__sticky_for_the_same_text():
    document = safe_default_document()
    document["config"].update(enabled=True, router_type="random")
    document["flags"][ROUTELLM_ENABLED] = {"enabled": True, "rollout_percent": 50}
    router = DomainRouter(flags=DocumentFlags(document), tracker=RecordingTracker())
    texts = [f"question number {i}" for i in range(40)]

    first = [_route(router, text).routed for text in texts]  # no key: the text picks the bucket
    again = [_route(router, text).routed for text in texts]

    expected = [
        bucket(ROUTELLM_ENABLED, hashlib.sha256(t.encode()).hexdigest()) < 50 for t in texts
    ]
    assert first == expected
    assert again == first  # sticky: the same text lands in the same bucket every time
    assert set(first) == {True, False}  # a partial rollout: some texts route, some do not


def test_real_cost_tracker__decision_recorded_locally():
    flags = FeatureFlags()
    flags.enable(FeatureFlags.ROUTELLM_ENABLED)
    tracker = CostTracker()
    router = DomainRouter(_routing_config(), flags=flags, tracker=tracker)

    decision = _route(router, "Write a poem about the sea")

    summary = tracker.get_metrics_summary()
    assert decision.event_id
    assert summary["routellm_usage_rate"] == 1.0
