"""DomainRouter under a live config: the config cache, and building RouteLLM's Controller off the
request path. A stand-in Controller keeps these tests offline and independent of routellm."""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from typing import Any

import orjson
import pytest

from routing import domain_router
from routing.domain_router import DomainRouter, RoutingDecision
from routing.evaluation import safe_default_document
from tests.flags_live import wait_until
from tests.routing.doubles import DocumentFlags, RecordingTracker
from tests.servers import free_port


class FakeRouter:
    def calculate_strong_win_rate(self, text: str) -> float:
        return 0.75


class FakeController:
    """Records each build; a router type in `slow` takes that long, one in `broken` fails."""

    builds: list[str] = []
    slow: dict[str, float] = {}
    broken: set[str] = set()

    def __init__(self, routers: list[str], strong_model: str, weak_model: str, **kwargs: Any):
        (router_type,) = routers
        self.builds.append(router_type)
        self.thread = threading.current_thread()
        time.sleep(self.slow.get(router_type, 0.0))
        if router_type in self.broken:
            raise OSError(f"no checkpoint for {router_type}")
        self.routers = {router_type: FakeRouter()}


@pytest.fixture(autouse=True)
def fake_controller(monkeypatch):
    FakeController.builds = []
    FakeController.slow = {}
    FakeController.broken = set()
    monkeypatch.setattr(domain_router, "load_controller_class", lambda: FakeController)
    return FakeController


def live_document(revision: int = 1, **config: Any) -> dict[str, Any]:
    """Routing on for every key: config.enabled and routellm_enabled at 100 %."""
    document = safe_default_document()
    document["router"] = "fake"
    document["revision"] = revision
    document["config"].update({"enabled": True, "router_type": "random", **config})
    document["flags"]["routellm_enabled"] = {"enabled": True, "rollout_percent": 100}
    return document


def route(router: DomainRouter, text: str = "hello", **kwargs: Any) -> RoutingDecision:
    return asyncio.run(router.route_by_domain(text, **kwargs))


def test_live_config__each_new_revision_is_used__never_a_stale_cached_one():
    flags = DocumentFlags(live_document(1, threshold=0.01))
    router = DomainRouter(flags=flags, tracker=RecordingTracker())
    assert route(router).threshold == 0.01

    def swap_in(revision: int) -> None:
        # As a poller replaces its document: the old one is freed, and CPython hands its
        # memory (its id()) to the next dict, here the new revision's document.
        flags.current = None
        document: dict[str, Any] = {}
        document.update(live_document(revision, threshold=revision / 100))
        flags.current = document

    for revision in range(2, 50):
        swap_in(revision)
        decision = route(router)
        assert (decision.revision, decision.threshold) == (revision, revision / 100)


def test_controller__built_when_the_router_is_constructed(fake_controller):
    router = DomainRouter(flags=DocumentFlags(live_document()), tracker=RecordingTracker())

    assert fake_controller.builds == ["random"]
    decision = route(router)
    assert decision.routed and decision.strong_win_rate == 0.75
    assert fake_controller.builds == ["random"]


def test_router_type_change__rebuilt_off_the_request_path__fallback_meanwhile(fake_controller):
    flags = DocumentFlags(live_document(1))
    router = DomainRouter(flags=flags, tracker=RecordingTracker())
    fake_controller.slow["bert"] = 0.5

    flags.current = live_document(2, router_type="bert")
    started = time.perf_counter()
    during = route(router)
    took = time.perf_counter() - started

    assert took < 0.2  # the 0.5 s build runs elsewhere
    assert during.fallback_used and not during.routed
    assert during.model == "gpt-4-1106-preview"
    wait_until(lambda: route(router).routed, timeout=3)
    assert fake_controller.builds == ["random", "bert"]


def test_failed_build__logged_once_per_config__every_request_falls_back(fake_controller, caplog):
    caplog.set_level(logging.WARNING, logger="routing.domain_router")
    fake_controller.broken.add("bert")
    flags = DocumentFlags(live_document(1, router_type="bert"))
    tracker = RecordingTracker()
    router = DomainRouter(flags=flags, tracker=tracker)

    decisions = [route(router) for _ in range(5)]

    assert all(d.fallback_used and not d.routed for d in decisions)
    assert all("no checkpoint for bert" in call["error"] for call in tracker.calls)
    assert fake_controller.builds == ["bert"]
    logged = [r for r in caplog.records if r.name == "routing.domain_router"]
    assert len(logged) == 1, [r.getMessage() for r in logged]

    # A new config is a new attempt; a later working one routes again.
    flags.current = live_document(2, router_type="random")
    wait_until(lambda: route(router).routed, timeout=3)
    assert fake_controller.builds == ["bert", "random"]


def test_malformed_bootstrap__route_by_domain_never_raises(tmp_path):
    from routing.client import stop_all_pollers
    from routing.flags import FeatureFlags

    bad = live_document(3)
    bad["flags"]["routellm_enabled"] = {"enabled": True, "rollout_percent": None}
    bad["config"]["domain_routing_overrides"] = None
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_bytes(orjson.dumps(bad))
    flags = FeatureFlags(
        url=f"http://127.0.0.1:{free_port()}",
        api_key="rp_test-key-for-a-dead-control-plane-000000",
        cache_path=tmp_path / "cache.json",
        bootstrap_path=bootstrap,
        first_timeout=0.5,
    )
    try:
        router = DomainRouter(flags=flags, tracker=RecordingTracker())
        decision = route(router, "Fix the bug in this Python function")
    finally:
        stop_all_pollers()

    assert decision.routed is False  # the safe default: routing off
    assert decision.model == "gpt-4-1106-preview"


def test_live_document_edited_copy__not_mistaken_for_the_cached_one():
    document = live_document(1, threshold=0.2)
    flags = DocumentFlags(document)
    router = DomainRouter(flags=flags, tracker=RecordingTracker())
    assert route(router).threshold == 0.2

    flags.current = copy.deepcopy(document)
    flags.current["revision"] = 2
    flags.current["config"]["threshold"] = 0.3

    assert route(router).threshold == 0.3
