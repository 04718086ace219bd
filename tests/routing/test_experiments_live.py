"""A live SDK (FeatureFlags polling, CostTracker posting) against a live control plane
(uvicorn, 2 workers, the flags fast path): a started experiment reaches the router, treatment
keys route with the treatment threshold, and the stored events carry each key's arm."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from controlplane.actors import Actor
from controlplane.experiments import create_experiment, start_experiment, stop_experiment
from controlplane.services import set_flag, update_config
from routing import CostTracker, FeatureFlags
from routing.client import stop_all_pollers
from routing.domain_router import DomainRouter
from routing.experiments import TREATMENT, arm_for
from tests.flags_live import wait_until
from tests.routing.test_domain_router_live import fake_controller  # noqa: F401 (win rate 0.75)
from tracking.models import Event

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ACTOR = Actor("user:ab-test", "127.0.0.1")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTEPLANE_CACHE_PATH", str(tmp_path) + "/")
    monkeypatch.setenv("ROUTEPLANE_SPOOL_DIR", str(tmp_path / "spool"))
    yield
    stop_all_pollers()


def test_live_sdk__arms_tagged__treatment_threshold_used(live_app, live_router):
    router = live_router.router()
    update_config(router=router, changes={"enabled": True, "threshold": 0.5}, actor=ACTOR)
    for flag in ("routellm_enabled", "routellm_a_b_testing"):
        set_flag(router=router, name=flag, enabled=True, rollout_percent=100, actor=ACTOR)
    experiment = create_experiment(
        router=router, name="higher bar", treatment_threshold=0.9, split=0.5, actor=ACTOR
    )
    flags = FeatureFlags(url=live_app, api_key=live_router.router_key)
    tracker = CostTracker(url=live_app, api_key=live_router.router_key)
    domain_router = DomainRouter(flags=flags, tracker=tracker)

    start_experiment(experiment=experiment, actor=ACTOR)
    wait_until(lambda: (flags.document().get("experiment") or {}).get("id") == experiment.pk, 5)

    entry = flags.document()["experiment"]
    keys = [f"user-{uuid.uuid4().hex[:8]}" for _ in range(60)]
    decisions = {key: asyncio.run(domain_router.route_by_domain("hi", key=key)) for key in keys}
    assert tracker.flush(timeout=10)

    stored = {str(e.event_id): e for e in Event.objects.filter(router_id=live_router.router_id)}
    arms = {key: arm_for(entry, key) for key in keys}
    assert set(arms.values()) == {"control", "treatment"}
    for key, decision in decisions.items():
        event = stored[decision.event_id]
        assert event.ab_group == arms[key]
        # The fake RouteLLM's win rate is 0.75: strong at 0.5 (control), weak at 0.9.
        expected = 0.9 if arms[key] == TREATMENT else 0.5
        assert (event.threshold, decision.threshold) == (expected, expected)
        assert event.model_tier == ("weak" if arms[key] == TREATMENT else "strong")

    stop_experiment(experiment=experiment, actor=ACTOR)
    wait_until(lambda: flags.document().get("experiment") is None, 5)
    after = asyncio.run(domain_router.route_by_domain("hi", key=keys[0]))
    assert after.ab_group is None and after.threshold == 0.5
