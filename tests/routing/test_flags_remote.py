"""FeatureFlags in remote mode against a live control plane (uvicorn, 2 workers)."""

from __future__ import annotations

import pytest

from controlplane.actors import Actor
from routing import FeatureFlags
from routing.client import stop_all_pollers
from routing.evaluation import bucket
from tests.flags_live import wait_until

# Not django_db: the data is committed (live_router) and live_app's teardown flushes it after
# stopping the server (tests/flags_live.py).
pytestmark = [pytest.mark.slow]
ACTOR = Actor("user:sdk-test", "127.0.0.1")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTEPLANE_CACHE_PATH", str(tmp_path) + "/")
    yield
    stop_all_pollers()


def test_remote__env_vars__remote_mode_with_server_document(live_app, live_router, monkeypatch):
    monkeypatch.setenv("ROUTEPLANE_URL", live_app)
    monkeypatch.setenv("ROUTEPLANE_API_KEY", live_router.router_key)

    flags = FeatureFlags()

    assert flags.is_remote
    assert flags.poller.source == "server"
    assert flags.document()["router"] == live_router.slug
    assert flags.get_all_flags() == {name: False for name in flags.get_all_flags()}


def test_enable__operator_key__written_audited_and_applied_at_once(live_app, live_router):
    from controlplane.models import AuditEntry

    flags = FeatureFlags(url=live_app, api_key=live_router.operator_key)

    flags.enable(FeatureFlags.ROUTELLM_COST_TRACKING)

    # No waiting for the next poll: the write's answer is applied before enable() returns.
    assert flags.is_enabled(FeatureFlags.ROUTELLM_COST_TRACKING) is True
    assert flags.get_all_flags()[FeatureFlags.ROUTELLM_COST_TRACKING] is True
    entry = AuditEntry.objects.filter(router_id=live_router.router_id, action="flag.set").first()
    assert entry is not None and entry.actor.startswith("key:")

    flags.disable(FeatureFlags.ROUTELLM_COST_TRACKING)
    assert flags.is_enabled(FeatureFlags.ROUTELLM_COST_TRACKING) is False


def test_enable__router_key__permission_error_naming_the_operator_key(live_app, live_router):
    flags = FeatureFlags(url=live_app, api_key=live_router.router_key)

    with pytest.raises(PermissionError, match="operator API key"):
        flags.enable(FeatureFlags.ROUTELLM_ENABLED)
    assert flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED) is False


def test_operator_write__reaches_a_polling_router_within_a_second(live_app, live_router):
    from controlplane.services import set_flag

    flags = FeatureFlags(url=live_app, api_key=live_router.router_key)
    flags.poller.wait_synced(2)

    set_flag(
        router=live_router.router(),
        name="routellm_enabled",
        enabled=True,
        rollout_percent=50,
        actor=ACTOR,
    )
    took = wait_until(lambda: flags.document()["revision"] == 2, timeout=3)

    assert took < 1.0
    # Sticky percentage rollout: evaluated per key with the shared rule.
    for key in ("user-1", "user-2", "user-3"):
        expected = bucket("routellm_enabled", key) < 50
        assert flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED, key=key) is expected
    assert flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED) is False  # no key: 50 % is not on


def test_kill_switch__forces_routing_flags_off_in_the_sdk(live_app, live_router):
    from controlplane.services import set_flag, set_kill_switch

    flags = FeatureFlags(url=live_app, api_key=live_router.router_key)
    for name in ("routellm_enabled", "routellm_cost_tracking"):
        set_flag(router=live_router.router(), name=name, enabled=True, actor=ACTOR)
    wait_until(lambda: flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED), timeout=3)

    set_kill_switch(router=live_router.router(), engaged=True, reason="test", actor=ACTOR)
    wait_until(lambda: not flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED), timeout=3)

    assert flags.is_enabled(FeatureFlags.ROUTELLM_COST_TRACKING) is True


def test_control_plane_killed__router_keeps_flags__new_revision_within_a_second_of_restart(
    flags_database_url, live_router
):
    import signal
    import time

    from controlplane.services import set_flag
    from tests.flags_live import live_env, stop_process, uvicorn_server
    from tests.servers import free_port

    port = free_port()
    env = live_env(flags_database_url)
    with uvicorn_server(env, port=port) as (base, process):
        flags = FeatureFlags(url=base, api_key=live_router.router_key)
        set_flag(
            router=live_router.router(), name="routellm_cost_tracking", enabled=True, actor=ACTOR
        )
        wait_until(lambda: flags.is_enabled(FeatureFlags.ROUTELLM_COST_TRACKING), timeout=3)
        stop_process(process, signal.SIGKILL)

    set_flag(router=live_router.router(), name="routellm_enabled", enabled=True, actor=ACTOR)
    time.sleep(1.5)
    assert flags.is_enabled(FeatureFlags.ROUTELLM_COST_TRACKING) is True  # last-known-good
    assert flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED) is False

    with uvicorn_server(env, port=port):
        took = wait_until(lambda: flags.is_enabled(FeatureFlags.ROUTELLM_ENABLED), timeout=3)
    assert took < 1.2
