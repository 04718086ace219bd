"""DomainRouter.acompletion against a fake OpenAI-compatible model server (tests/fakemodel.py):
the call's real usage priced into the report, retries, fallback, timeout, streaming, knobs."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from routing import CostTracker, DomainRouter, FeatureFlags, RouteLLMConfig, RouterType
from routing.prices import shipped_price_book
from tests.fakemodel import FakeModelServer

pytest.importorskip("litellm")
pytest.importorskip("routellm")
pytestmark = pytest.mark.slow

STRONG, WEAK = "gpt-4-1106-preview", "gpt-3.5-turbo"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.delenv("ROUTEPLANE_URL", raising=False)
    monkeypatch.delenv("ROUTEPLANE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "dummy-never-sent-to-a-provider")
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


def make_router(fake: FakeModelServer, *, routed: bool = True, **config) -> DomainRouter:
    flags = FeatureFlags()
    if routed:
        flags.enable(FeatureFlags.ROUTELLM_ENABLED)
    config.setdefault("threshold", 0.5)
    return DomainRouter(
        RouteLLMConfig(enabled=True, router_type=RouterType.RANDOM, **config),
        flags=flags,
        tracker=CostTracker(),
        api_base=fake.api_base,
        retry_backoff=0.01,
    )


def ask(router: DomainRouter, text: str, **kwargs):
    return asyncio.run(router.acompletion([{"role": "user", "content": text}], **kwargs))


def billed(fake: FakeModelServer) -> float:
    """The price table applied to what the fake answered (successful calls only)."""
    book, now = shipped_price_book(), datetime.now(UTC)
    total = 0.0
    for call in fake.calls:
        if call.status == 200:
            price = book.price(call.model, now)
            total += call.prompt_tokens * price.input + call.completion_tokens * price.output
    return total


def test_100_calls__report_cost_is_the_price_table_on_the_fakes_usage(fake):
    random.seed(1234)  # RouteLLM's random router draws from `random`
    router = make_router(fake)

    async def run() -> list:
        return [
            await router.acompletion([{"role": "user", "content": f"Question {i} " * (i % 9)}])
            for i in range(100)
        ]

    responses = asyncio.run(run())
    report = router.tracker.get_cost_savings_report(period_days=1)

    assert len(fake.calls) == 100
    assert {c.model for c in fake.calls} == {STRONG, WEAK}  # both tiers served
    assert report.total_requests == 100 and report.unpriced_requests == 0
    assert round(report.actual_cost, 2) == round(billed(fake), 2)
    assert report.actual_cost == pytest.approx(billed(fake), rel=1e-9)
    assert report.prompt_tokens == sum(c.prompt_tokens for c in fake.calls)
    assert report.completion_tokens == sum(c.completion_tokens for c in fake.calls)
    assert report.estimated_savings > 0  # weak calls priced against the strong model
    assert report.success_rate == 1.0 and report.routellm_requests == 100
    first = responses[0]
    assert first.routeplane.model == first.model or first.routeplane.model in first.model
    assert first.usage.prompt_tokens == fake.calls[0].prompt_tokens


def test_strong_500__retried_then_served_by_fallback__rates_say_so(fake):
    router = make_router(fake, threshold=0.0, max_retry_attempts=2)  # every prompt: strong
    fake.fail(STRONG, 500)

    response = ask(router, "Explain the proof in detail")

    assert len(fake.calls_for(STRONG, 500)) == 1 + 2  # the first try and 2 retries
    assert fake.calls_for(WEAK, 200)
    assert response.routeplane.model == WEAK and response.routeplane.fallback_used
    report = router.tracker.get_cost_savings_report(period_days=1)
    assert report.fallback_rate == 1.0
    assert report.success_rate == 1.0  # the fallback served the caller
    (tracked,) = router.tracker.local_events()
    assert tracked.event.selected_model == WEAK and tracked.event.fallback_used
    assert "HTTP 500" in tracked.event.error


def test_fallback_disabled__error_reaches_caller__recorded_as_failure(fake):
    router = make_router(fake, threshold=0.0, max_retry_attempts=1, fallback_enabled=False)
    fake.fail(STRONG, 500)

    with pytest.raises(Exception) as raised:
        ask(router, "Explain the proof in detail")

    assert getattr(raised.value, "status_code", None) == 500
    assert len(fake.calls_for(STRONG)) == 2 and not fake.calls_for(WEAK)
    report = router.tracker.get_cost_savings_report(period_days=1)
    assert report.total_requests == 1 and report.success_rate == 0.0
    (tracked,) = router.tracker.local_events()
    assert tracked.event.success is False and "HTTP 500" in tracked.event.error


def test_fail_twice_then_succeed__retries_serve_the_same_model(fake):
    router = make_router(fake, threshold=0.0, max_retry_attempts=3)
    fake.fail(STRONG, 503, times=2)

    response = ask(router, "hello")

    assert response.routeplane.model == STRONG and not response.routeplane.fallback_used
    assert [c.status for c in fake.calls] == [503, 503, 200]


def test_timeout__honoured_then_fallback(fake):
    router = make_router(fake, threshold=0.0, max_retry_attempts=0, timeout_seconds=0.3)
    fake.hang(STRONG, 3.0)

    response = ask(router, "hello")

    assert response.routeplane.model == WEAK
    (tracked,) = router.tracker.local_events()
    assert tracked.event.latency_ms < 2500  # the 3 s hang was not waited out
    assert "Timeout" in tracked.event.error or "timed out" in tracked.event.error.lower()


def test_stream__usage_reported_when_the_stream_ends(fake):
    router = make_router(fake, threshold=1.0)  # every prompt: weak

    async def run() -> tuple[str, object]:
        stream = await router.acompletion(
            [{"role": "user", "content": "write a haiku about the sea"}], stream=True
        )
        assert router.tracker.local_events() == []  # not tracked before the end
        text = ""
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
        return text, stream.routeplane

    text, decision = asyncio.run(run())

    assert text == f"answer from {WEAK}"
    (call,) = fake.calls
    (tracked,) = router.tracker.local_events()
    assert str(tracked.event.event_id) == decision.event_id
    assert (tracked.event.prompt_tokens, tracked.event.completion_tokens) == (
        call.prompt_tokens,
        call.completion_tokens,
    )


def test_completion__sync_callers(fake):
    router = make_router(fake, threshold=1.0)

    response = router.completion([{"role": "user", "content": "hi"}])

    assert response.routeplane.model == WEAK
    assert response.choices[0].message.content == f"answer from {WEAK}"


# --- every knob live ------------------------------------------------------------------------


def test_cost_tracking_off__no_events(fake):
    router = make_router(fake, cost_tracking_enabled=False)

    response = ask(router, "hello")
    decision = asyncio.run(router.route_by_domain("hello"))

    assert router.tracker.local_events() == []
    assert response.routeplane.event_id is None and decision.event_id is None
    assert decision.record_outcome(quality=1.0) is False


def test_performance_monitoring_off__no_latency_sent(fake):
    router = make_router(fake, performance_monitoring_enabled=False)

    response = ask(router, "hello")
    decision = asyncio.run(router.route_by_domain("hello"))
    decision.record_outcome(latency_ms=120.0, quality=0.5)

    events = [t.event for t in router.tracker.local_events()]
    assert len(events) == 2 and all(e.latency_ms is None for e in events)
    assert response.routeplane.event_id
    assert router.tracker.get_cost_savings_report().quality_samples == 1


def test_domain_override_router_type__that_domain_uses_its_router(fake, monkeypatch):
    from routing import domain_router

    built = []

    class Router:
        def __init__(self, rate: float) -> None:
            self.rate = rate

        def calculate_strong_win_rate(self, text: str) -> float:
            return self.rate

    class Controller:
        def __init__(self, routers, **kwargs) -> None:
            built.append(routers[0])
            self.routers = {routers[0]: Router(0.9 if routers[0] == "random" else 0.1)}

    monkeypatch.setattr(domain_router, "load_controller_class", lambda: Controller)
    router = make_router(fake, domain_routing_overrides={"legal": {"router_type": "bert"}})
    first = asyncio.run(router.route_by_domain("Review this contract clause"))
    assert first.fallback_used  # bert is built in the background meanwhile
    deadline = time.monotonic() + 5
    legal = first
    while not legal.routed and time.monotonic() < deadline:
        time.sleep(0.01)
        legal = asyncio.run(router.route_by_domain("Review this contract clause"))

    other = asyncio.run(router.route_by_domain("What time is it?"))

    assert built == ["random", "bert"]
    assert legal.strong_win_rate == 0.1 and legal.model == WEAK
    assert other.strong_win_rate == 0.9 and other.model == STRONG


def test_default_model_from_yaml__unrouted_traffic_goes_to_it(fake, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_config:\n  default_model: gpt-4o-mini\n"
        "routellm:\n  enabled: true\n  router_type: random\n"
    )
    config = RouteLLMConfig.from_yaml(path)
    router = DomainRouter(
        config, flags=FeatureFlags(), tracker=CostTracker(), api_base=fake.api_base
    )

    response = ask(router, "hello")

    assert config.default_model == "gpt-4o-mini"
    assert "default_model" not in config.to_dict()  # not part of the control plane's config
    assert response.routeplane.model == "gpt-4o-mini" and fake.calls[0].model == "gpt-4o-mini"
    without = DomainRouter(RouteLLMConfig(), flags=FeatureFlags(), tracker=CostTracker())
    assert asyncio.run(without.route_by_domain("hello")).model == STRONG


def test_routellm_environment__applies_when_no_config_given(fake, monkeypatch):
    monkeypatch.setenv("ROUTELLM_ENABLED", "true")
    monkeypatch.setenv("ROUTELLM_ROUTER_TYPE", "random")
    monkeypatch.setenv("ROUTELLM_THRESHOLD", "1.0")
    monkeypatch.setenv("ROUTELLM_WEAK_MODEL", "gpt-4o-mini")
    flags = FeatureFlags()
    flags.enable(FeatureFlags.ROUTELLM_ENABLED)

    router = DomainRouter(flags=flags, api_base=fake.api_base)
    decision = asyncio.run(router.route_by_domain("hello"))

    assert router.local_config.threshold == 1.0
    assert decision.routed and decision.model == "gpt-4o-mini" and decision.tier == "weak"
    # The router's own tracker follows the environment's models too.
    assert router.tracker.weak_model == "gpt-4o-mini"
    # An explicit config wins over the environment.
    explicit = DomainRouter(RouteLLMConfig(), flags=flags, api_base=fake.api_base)
    assert explicit.local_config.threshold == RouteLLMConfig().threshold
