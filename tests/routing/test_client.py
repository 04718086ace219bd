"""The SDK poller against a stand-in control plane that fails in every way we could think of.

Routers must keep routing on the last-known-good document (or the safe default), never raise or
block in their request path, log each kind of problem once, and pick up a new revision within
about a second of the control plane coming back.
"""

from __future__ import annotations

import logging
import time

import orjson
import pytest

from routing import FeatureFlags
from routing.client import FlagsPoller, read_document_file, stop_all_pollers
from routing.evaluation import ROUTELLM_COST_TRACKING, ROUTELLM_ENABLED
from routing.remote import CLIENT_ID, USER_AGENT, Remote
from tests.flags_live import wait_until
from tests.routing.fakeplane import FakePlane, make_document
from tests.servers import free_port

KEY = "rp_test-key-for-the-fake-plane-0000000000"


@pytest.fixture(autouse=True)
def _stop_pollers():
    yield
    stop_all_pollers()


@pytest.fixture
def plane():
    fake = FakePlane()
    yield fake
    fake.stop()


@pytest.fixture
def cache_file(tmp_path):
    return tmp_path / "cache" / "flags.json"


def _flags(url: str, cache_file, **kwargs) -> FeatureFlags:
    return FeatureFlags(url=url, api_key=KEY, cache_path=cache_file, **kwargs)


def test_remote_start__server_up__uses_server_document_and_saves_cache(plane, cache_file):
    plane.set_document(make_document(3, routellm_cost_tracking=100))

    flags = _flags(plane.url, cache_file)

    assert flags.poller.source == "server"
    assert flags.document()["revision"] == 3
    assert flags.is_enabled(ROUTELLM_COST_TRACKING) is True
    saved = orjson.loads(cache_file.read_bytes())
    assert saved["document"]["revision"] == 3
    assert saved["etag"] == plane.etag


def test_every_request__sends_sdk_user_agent_and_client_id(plane, cache_file):
    _flags(plane.url, cache_file)

    first = plane.requests[0]
    assert first["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("routeplane-sdk/")
    assert first["x-routeplane-client"] == CLIENT_ID
    assert first["authorization"] == f"Bearer {KEY}"


def test_remote_start__server_down_cache_present__uses_cache_at_once(plane, cache_file):
    plane.set_document(make_document(7, routellm_enabled=100))
    _flags(plane.url, cache_file)
    stop_all_pollers()
    port = plane.port
    plane.stop()

    started = time.monotonic()
    flags = _flags(f"http://127.0.0.1:{port}", cache_file)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0
    assert flags.poller.source == "cache"
    assert flags.document()["revision"] == 7
    assert flags.is_enabled(ROUTELLM_ENABLED, key="user-1") is True


def test_remote_start__server_down_no_cache__safe_default_routing_off(cache_file):
    flags = _flags(f"http://127.0.0.1:{free_port()}", cache_file)

    assert flags.poller.source == "default"
    assert flags.get_all_flags() == {name: False for name in flags.get_all_flags()}
    assert flags.document()["config"]["enabled"] is False


def test_remote_start__bootstrap_file__used_when_no_cache(tmp_path, cache_file):
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_bytes(orjson.dumps(make_document(2, routellm_cost_tracking=100)))

    flags = _flags(f"http://127.0.0.1:{free_port()}", cache_file, bootstrap_path=bootstrap)

    assert flags.poller.source == "bootstrap"
    assert flags.is_enabled(ROUTELLM_COST_TRACKING) is True


def test_remote_start__server_slow__gives_up_after_2_seconds(plane, cache_file):
    plane.mode = "slow"

    started = time.monotonic()
    flags = _flags(plane.url, cache_file)
    elapsed = time.monotonic() - started

    assert 1.5 < elapsed < 3.0
    assert flags.poller.source == "default"
    assert flags.is_enabled(ROUTELLM_ENABLED) is False


def test_server_killed_while_polling__keeps_last_document__picks_up_new_one_within_a_second(
    plane, cache_file
):
    plane.set_document(make_document(1, routellm_cost_tracking=100))
    flags = _flags(plane.url, cache_file)
    port = plane.port
    plane.stop()
    time.sleep(2.5)  # long enough for the poller to be at its 1 s backoff cap

    assert flags.is_enabled(ROUTELLM_COST_TRACKING) is True  # last-known-good
    revived = FakePlane(port=port)
    try:
        revived.set_document(make_document(2, routellm_enabled=100))
        took = wait_until(lambda: flags.document()["revision"] == 2, timeout=3)
    finally:
        revived.stop()

    assert took < 1.5
    assert flags.is_enabled(ROUTELLM_ENABLED) is True


@pytest.mark.parametrize("mode", ["500", "garbage", "401"])
def test_server_misbehaves__keeps_last_document__logs_once(plane, cache_file, caplog, mode):
    plane.set_document(make_document(4, routellm_cost_tracking=100))
    flags = _flags(plane.url, cache_file)
    caplog.set_level(logging.WARNING, logger="routing.client")

    plane.mode = mode
    plane.set_document(make_document(5))  # wakes the long-poll; the next answers misbehave
    time.sleep(2.5)

    assert flags.document()["revision"] in (4, 5)
    problems = [r for r in caplog.records if r.name == "routing.client"]
    assert len(problems) == 1, [r.getMessage() for r in problems]
    assert len(plane.requests) >= 3, plane.requests  # kept trying, backoff capped at 1 s
    if mode == "401":
        assert problems[0].levelno == logging.ERROR
        assert "refused this API key" in problems[0].getMessage()

    plane.mode = "ok"
    took = wait_until(lambda: flags.document()["revision"] == 5, timeout=3)
    assert took < 1.5


def test_long_poll__new_revision__applied_within_100ms(plane, cache_file):
    flags = _flags(plane.url, cache_file)
    time.sleep(0.2)  # the poller is now waiting with the current ETag

    started = time.monotonic()
    plane.set_document(make_document(9, routellm_enabled=100))
    wait_until(lambda: flags.document()["revision"] == 9, timeout=2)

    assert time.monotonic() - started < 0.5
    assert plane.requests[-1]["if-none-match"] == plane.etag


def test_cache__other_key_file__ignored(plane, tmp_path):
    cache = tmp_path / "shared.json"
    _flags(plane.url, cache)
    stop_all_pollers()
    plane.stop()

    assert read_document_file(cache, identity="someone-else") is None
    poller = FlagsPoller(Remote(url=plane.url, api_key="rp_another-key"), cache_path=cache)
    poller._load_fallback()
    assert poller.source == "default"


def test_cache_directory__from_env__file_named_by_key_hash(plane, tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTEPLANE_CACHE_PATH", str(tmp_path) + "/")

    FeatureFlags(url=plane.url, api_key=KEY)

    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    assert KEY not in files[0].name
    assert read_document_file(files[0])["revision"] == 1


def test_is_enabled__never_blocks_while_server_hangs(plane, cache_file):
    flags = _flags(plane.url, cache_file)
    plane.mode = "slow"
    plane.set_document(make_document(2))

    started = time.perf_counter()
    for _ in range(1000):
        flags.is_enabled(ROUTELLM_ENABLED, key="k")
    assert time.perf_counter() - started < 0.5
