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
    # Pollers first: stopping the plane under a live poller makes it log "unreachable", which
    # could land in the next test's captured logs.
    stop_all_pollers()
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
    # The next long-poll carries the new ETag (it leaves once the cache file is written).
    wait_until(lambda: plane.requests[-1].get("if-none-match") == plane.etag, timeout=1)


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


def _routing_on_document(revision: int, **flags_on: int) -> dict:
    document = make_document(revision, **flags_on)
    document["config"]["enabled"] = True
    return document


def test_warm_start__cache_etag_current__first_request_does_not_long_poll(plane, cache_file):
    plane.set_document(make_document(6, routellm_cost_tracking=100))
    _flags(plane.url, cache_file)
    wait_until(lambda: len(plane.paths) >= 2, timeout=2)  # now in its long-poll
    stop_all_pollers()  # a restart: the disk cache now holds the server's current ETag
    plane.paths.clear()

    started = time.monotonic()
    flags = _flags(plane.url, cache_file)
    elapsed = time.monotonic() - started

    # The server confirms the cache with a 304 at once instead of holding a long-poll.
    assert elapsed < 1.0
    assert flags.poller.source == "server"
    assert flags.poller.wait_synced(0)
    assert "wait=" not in plane.paths[0]
    wait_until(lambda: len(plane.paths) >= 2, timeout=2)
    assert "wait=" in plane.paths[1]  # later polls long-poll


BAD_DOCUMENTS = {
    "flag state not an object": lambda d: d["flags"].__setitem__("routellm_enabled", True),
    "rollout_percent null": lambda d: d["flags"]["routellm_enabled"].update(rollout_percent=None),
    "rollout_percent > 100": lambda d: d["flags"]["routellm_enabled"].update(rollout_percent=150),
    "enabled not a boolean": lambda d: d["flags"]["routellm_enabled"].update(enabled="yes"),
    "overrides null": lambda d: d["config"].update(domain_routing_overrides=None),
    "threshold not a number": lambda d: d["config"].update(threshold="high"),
    "kill_switch not a boolean": lambda d: d.update(kill_switch="no"),
}


@pytest.mark.parametrize("damage", BAD_DOCUMENTS.values(), ids=BAD_DOCUMENTS.keys())
def test_malformed_document_from_server__rejected_whole__keeps_last_good(
    plane, cache_file, caplog, damage
):
    from routing.evaluation import should_route

    plane.set_document(_routing_on_document(4, routellm_enabled=100))
    flags = _flags(plane.url, cache_file)
    caplog.set_level(logging.WARNING, logger="routing.client")
    bad = _routing_on_document(5, routellm_enabled=100)
    bad["config"]["domain_specific_routing"] = True
    damage(bad)

    plane.set_document(bad)
    time.sleep(0.5)

    assert flags.document()["revision"] == 4
    assert flags.is_enabled(ROUTELLM_ENABLED, key="user-1") is True
    assert should_route(flags.document(), "technical", "user-1") is True
    assert orjson.loads(cache_file.read_bytes())["document"]["revision"] == 4
    problems = [r for r in caplog.records if r.name == "routing.client"]
    assert len(problems) == 1, [r.getMessage() for r in problems]
    assert "invalid" in problems[0].getMessage()

    plane.set_document(_routing_on_document(6))
    wait_until(lambda: flags.document()["revision"] == 6, timeout=3)


@pytest.mark.parametrize("damage", BAD_DOCUMENTS.values(), ids=BAD_DOCUMENTS.keys())
def test_malformed_cache_or_bootstrap__ignored__safe_default(tmp_path, cache_file, damage):
    from routing.client import write_document_file

    bad = _routing_on_document(3, routellm_enabled=100)
    damage(bad)
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_bytes(orjson.dumps(bad))
    url = f"http://127.0.0.1:{free_port()}"
    poller = FlagsPoller(Remote(url=url, api_key=KEY), cache_path=cache_file)
    write_document_file(cache_file, bad, '"etag"', poller.identity)

    flags = _flags(url, cache_file, bootstrap_path=bootstrap, first_timeout=0.5)

    assert flags.poller.source == "default"
    assert flags.get_all_flags()[ROUTELLM_ENABLED] is False
    assert flags.is_enabled(ROUTELLM_ENABLED, key="user-1") is False


def test_server_answers_an_older_revision__ignored__with_backoff(plane, cache_file):
    plane.set_document(make_document(5, routellm_cost_tracking=100))
    flags = _flags(plane.url, cache_file)

    # Another replica, a revision behind, answers from now on (its ETag differs from ours).
    plane.set_document(make_document(3))
    time.sleep(1.0)
    requests = len(plane.requests)

    assert flags.document()["revision"] == 5
    assert flags.is_enabled(ROUTELLM_COST_TRACKING) is True
    assert requests < 15, requests  # backs off (capped at 1 s), no hot loop

    plane.set_document(make_document(6))
    wait_until(lambda: flags.document()["revision"] == 6, timeout=2)


def test_server_answers_200_without_etag__applied__with_backoff_not_a_hot_loop(
    plane, cache_file, caplog
):
    flags = _flags(plane.url, cache_file)
    caplog.set_level(logging.WARNING, logger="routing.client")
    plane.mode = "no-etag"
    plane.set_document(make_document(2, routellm_cost_tracking=100))
    time.sleep(1.5)

    assert flags.document()["revision"] == 2
    assert len(plane.requests) < 15, len(plane.requests)
    problems = [r for r in caplog.records if r.name == "routing.client"]
    assert len(problems) == 1 and "ETag" in problems[0].getMessage()


def test_fetch_once_from_another_thread__does_not_share_the_pollers_connection(plane, cache_file):
    flags = _flags(plane.url, cache_file)
    time.sleep(0.2)  # the poller thread now waits in a long-poll on its connection

    assert flags.poller.fetch_once() == 304  # e.g. enable() before the first document

    plane.set_document(make_document(2))
    took = wait_until(lambda: flags.document()["revision"] == 2, timeout=2)
    assert took < 0.5  # the long-poll was not disturbed


@pytest.mark.parametrize(
    ("status", "expected", "not_expected"),
    [
        (401, "not valid", "may only read"),
        (403, "operator API key", "not valid"),
    ],
)
def test_enable__401_and_403__say_which_problem(plane, cache_file, status, expected, not_expected):
    flags = _flags(plane.url, cache_file)
    plane.write_status = status

    with pytest.raises(PermissionError) as raised:
        flags.enable(ROUTELLM_ENABLED)

    message = str(raised.value)
    assert expected in message and not_expected not in message
    assert f"HTTP {status}" in message


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fork__child_restarts_its_poller_with_a_new_client_id(plane, cache_file):
    import os
    import signal

    flags = _flags(plane.url, cache_file)
    assert flags.poller.wait_synced(2)
    parent_id = CLIENT_ID
    read_end, write_end = os.pipe()

    pid = os.fork()
    if pid == 0:  # the child: report what it sees, then leave without running pytest's atexit
        status = 1
        try:
            import routing.remote

            flags.is_enabled(ROUTELLM_ENABLED)  # the next use restarts the poller
            restarted = flags.poller._thread is not None and flags.poller._thread.is_alive()
            fresh_id = routing.remote.CLIENT_ID != parent_id
            os.write(write_end, f"{int(restarted)}{int(fresh_id)}".encode())
            status = 0
            time.sleep(5)  # keep polling until the parent has seen a request
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        answer = os.read(read_end, 2).decode()
        assert answer == "11", answer
        wait_until(
            lambda: any(r.get("x-routeplane-client") != parent_id for r in plane.requests),
            timeout=3,
        )
    finally:
        os.close(read_end)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
