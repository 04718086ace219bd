"""Redis down: flags are still served (and follow a write), events are still accepted, and
/readyz says degraded."""

from __future__ import annotations

import httpx
import pytest

from routing import CostTracker, FeatureFlags
from tests.faults.stack import wait_for

pytestmark = pytest.mark.slow


def test_redis_down__flags_served_events_accepted_readyz_degraded(stack, tmp_path):
    router = stack.routers["redisdown"]
    operator = {"Authorization": f"Bearer {router.operator}"}
    with stack.web():
        flags = FeatureFlags(stack.base, router.router, cache_path=tmp_path / "flags.json")
        wait_for(lambda: flags.poller.source == "server", 10)
        stack.redis.stop()
        try:
            ready = httpx.get(f"{stack.base}/readyz", timeout=10)
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"

            # An operator write (rate limits fail open) reaches the SDK's long-poll.
            assert not flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED)
            written = httpx.put(
                f"{stack.base}/api/v1/routers/{router.slug}/flags/routellm_enabled",
                json={"enabled": True, "rollout_percent": 100},
                headers=operator,
                timeout=10,
            )
            assert written.status_code == 200, written.text
            wait_for(lambda: flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED), 10)
            raw = httpx.get(
                f"{stack.base}/api/v1/flags",
                headers={"Authorization": f"Bearer {router.router}"},
                timeout=10,
            )
            assert raw.status_code == 200
            assert "x-routeplane-flags" in raw.headers  # answered by the fast path
            assert raw.json()["flags"]["routellm_enabled"]["enabled"] is True

            tracker = CostTracker(stack.base, router.router, spool_dir=tmp_path / "spool")
            ids = [
                tracker.track_routing_decision(f"p{i}", ["legal"], "routellm", "gpt-4", None)
                for i in range(500)
            ]
            assert tracker.flush(timeout=30)
            assert tracker.sender.counts["events"].sent == 500  # answered 200, none spooled
            assert tracker.sender.counts["events"].spilled == 0
            assert set(stack.event_ids(router)) == set(ids)
            tracker.close()
        finally:
            stack.redis.start()
