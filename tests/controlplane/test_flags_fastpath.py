"""GET /api/v1/flags on a real uvicorn (2 workers) in front of Django: the ASGI fast path.

Writes go through the services in this process (committed), so the server learns about them the
way production does: PostgreSQL NOTIFY, or the periodic re-check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from controlplane.actors import Actor
from controlplane.flagserver.app import clamp_wait
from tests import flags_live
from tests.flags_live import live_env, uvicorn_server, wait_until

# Fixtures of the live control plane (a conftest here is not ours to add).
committed = flags_live.committed
flags_database_url = flags_live.flags_database_url
live_app = flags_live.live_app
live_router = flags_live.live_router

# Not django_db: the data is committed (live_router) and live_app's teardown flushes it after
# stopping the server (tests/flags_live.py); a TRUNCATE after each test could deadlock with it.
pytestmark = [pytest.mark.slow]


@pytest.fixture(autouse=True)
def _no_flush_thread():
    # In-process DRF calls would start the ORM flush thread, which has no DB access here.
    from controlplane.clients import recorder

    recorder.autostart = False
    yield
    recorder.autostart = True


ACTOR = Actor("user:fastpath-test", "127.0.0.1")


def _get(
    target: str | httpx.Client,
    key: str,
    etag: str | None = None,
    wait: float | None = None,
    method: str = "GET",
    **headers,
) -> httpx.Response:
    """A flags request on a new connection (`target` a base URL) or on a client's connection."""
    if etag:
        headers["If-None-Match"] = etag
    params = {"wait": wait} if wait is not None else None
    headers = {"Authorization": f"Bearer {key}", **headers}
    if isinstance(target, httpx.Client):
        return target.request(method, "/api/v1/flags", headers=headers, params=params)
    return httpx.request(
        method, f"{target}/api/v1/flags", headers=headers, params=params, timeout=70
    )


def _fast(target: str | httpx.Client, key: str, timeout: float = 5.0) -> httpx.Response:
    """The first answer from the fast path (a brand-new key is known to it within ~0.5 s)."""
    holder: dict[str, httpx.Response] = {}

    def served_fast() -> bool:
        holder["r"] = _get(target, key)
        return holder["r"].headers.get("x-routeplane-flags") == "fast"

    wait_until(served_fast, timeout, interval=0.05)
    return holder["r"]


@contextmanager
def fast_connection(base: str, key: str) -> Iterator[httpx.Client]:
    """One keep-alive connection to a worker whose fast path knows `key`.

    Each worker loads a new key on its own re-check; which worker accepts a new connection is
    up to the kernel. Requests on this connection stay with the worker that answered fast.
    """
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=base, limits=limits, timeout=70) as client:
        _fast(client, key)
        yield client


def _set_flag(live_router, name: str, enabled: bool = True, percent: int = 100):
    from controlplane.services import set_flag

    return set_flag(
        router=live_router.router(),
        name=name,
        enabled=enabled,
        rollout_percent=percent,
        actor=ACTOR,
    )


def test_fast_path_and_drf_view__identical_body_and_etag(live_app, live_router, client):
    from controlplane.services import set_kill_switch, set_phase

    set_phase(router=live_router.router(), phase="single_domain", domain="legal", actor=ACTOR)
    set_kill_switch(router=live_router.router(), engaged=True, reason="drill", actor=ACTOR)
    _set_flag(live_router, "routellm_a_b_testing", percent=37)

    drf = client.get("/api/v1/flags", HTTP_AUTHORIZATION=f"Bearer {live_router.router_key}")
    answers: list[httpx.Response] = []

    def fast_and_current() -> bool:  # the fast path has the last write (NOTIFY) on this worker
        answer = _fast(live_app, live_router.router_key)
        if answer.headers["etag"] == drf["ETag"]:
            answers.append(answer)
        return len(answers) == 6  # several connections: both workers, most likely

    wait_until(fast_and_current, 10, interval=0.05)

    assert drf.status_code == 200
    assert "x-routeplane-flags" not in drf.headers
    for fast in answers:
        assert fast.status_code == 200
        assert fast.content == drf.content
        assert fast.headers["etag"] == drf["ETag"]
    document = answers[0].json()
    assert document["revision"] == 4
    assert document["kill_switch"] is True
    assert document["phase"] == "single_domain"
    assert document["flags"]["routellm_a_b_testing"] == {"enabled": True, "rollout_percent": 37}


def test_if_none_match__current_etag__304_from_memory(live_app, live_router):
    with fast_connection(live_app, live_router.router_key) as connection:
        etag = _get(connection, live_router.router_key).headers["etag"]
        answers = [
            _get(connection, live_router.router_key, etag=header)
            for header in (etag, f"W/{etag}", f'"other", {etag}', "*")
        ]

    for again in answers:
        assert again.status_code == 304
        assert again.headers["etag"] == etag
        assert again.headers["x-routeplane-flags"] == "fast"
        assert again.content == b""
        assert "content-type" not in again.headers


def test_head_304__from_the_fast_path__no_content_type(live_app, live_router):
    with fast_connection(live_app, live_router.router_key) as connection:
        etag = _get(connection, live_router.router_key).headers["etag"]
        head = _get(connection, live_router.router_key, etag=etag, method="HEAD")

    assert head.status_code == 304
    assert head.headers["x-routeplane-flags"] == "fast"
    assert "content-type" not in head.headers


def test_head_304__from_django__no_content_type(flags_database_url, live_router):
    from controlplane.services import create_api_key

    # No re-check for an hour: a key created after the start is unknown to the fast path, so
    # Django answers it (a key is loaded by the re-check; only revocations are notified).
    env = live_env(flags_database_url, ROUTEPLANE_FLAGS_RECHECK_SECONDS="3600")
    with uvicorn_server(env) as (base, _process):
        _, raw = create_api_key(router=live_router.router(), role="router", actor=ACTOR)
        etag = _get(base, raw).headers["etag"]
        head = _get(base, raw, etag=etag, method="HEAD")

    assert head.status_code == 304
    assert "x-routeplane-flags" not in head.headers  # Django's answer
    assert "content-type" not in head.headers


def test_head_long_poll__held_by_the_fast_path__answered_on_write(live_app, live_router):
    result: dict[str, httpx.Response] = {}
    with fast_connection(live_app, live_router.router_key) as connection:
        etag = _get(connection, live_router.router_key).headers["etag"]

        def poll() -> None:
            result["r"] = _get(
                connection, live_router.router_key, etag=etag, wait=60, method="HEAD"
            )

        thread = threading.Thread(target=poll)
        thread.start()
        time.sleep(0.5)  # parked by now (were it not, it would see the write at once: same outcome)
        assert "r" not in result  # held: Django never holds a poll
        _set_flag(live_router, "routellm_enabled", percent=15)
        thread.join(10)

    head = result["r"]
    assert head.status_code == 200
    assert head.headers["x-routeplane-flags"] == "fast"
    assert head.headers["etag"] != etag
    assert head.headers["content-type"] == "application/json"
    assert head.content == b""


def test_long_poll__write__answered_within_a_second_with_new_document(live_app, live_router):
    result: dict[str, object] = {}
    with fast_connection(live_app, live_router.router_key) as connection:
        etag = _get(connection, live_router.router_key).headers["etag"]
        _long_poll_and_write(connection, live_router, etag, result)

    response = result["response"]
    assert response.status_code == 200
    assert response.headers["x-routeplane-flags"] == "fast"
    assert response.json()["flags"]["routellm_enabled"] == {"enabled": True, "rollout_percent": 25}
    assert response.headers["etag"] != etag
    assert result["at"] - result["written"] < 1.0


def _long_poll_and_write(connection: httpx.Client, live_router, etag: str, result: dict) -> None:
    def poll() -> None:
        result["response"] = _get(connection, live_router.router_key, etag=etag, wait=30)
        result["at"] = time.monotonic()

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)  # parked by now (were it not, it would see the write at once: same outcome)
    assert "response" not in result
    _set_flag(live_router, "routellm_enabled", percent=25)
    result["written"] = time.monotonic()
    thread.join(10)


def test_long_poll__nothing_changes__304_after_wait(live_app, live_router):
    with fast_connection(live_app, live_router.router_key) as connection:
        etag = _get(connection, live_router.router_key).headers["etag"]
        started = time.monotonic()
        response = _get(connection, live_router.router_key, etag=etag, wait=1)
        took = time.monotonic() - started

    assert response.status_code == 304
    assert response.headers["x-routeplane-flags"] == "fast"
    assert 0.9 < took < 3


def test_long_poll__stale_etag__answers_at_once(live_app, live_router):
    started = time.monotonic()
    response = _get(live_app, live_router.router_key, etag='"stale"', wait=30)

    assert response.status_code == 200
    assert time.monotonic() - started < 1.0


def test_clamp_wait__at_most_60_seconds_and_bad_values_are_zero():
    assert clamp_wait(b"wait=1000") == 60.0
    assert clamp_wait(b"wait=2.5") == 2.5
    assert clamp_wait(b"wait=-3") == 0.0
    assert clamp_wait(b"wait=soon") == 0.0
    assert clamp_wait(b"") == 0.0


def test_revoked_key__refused_within_a_second_on_every_worker(live_app, live_router):
    from controlplane.models import ApiKey
    from controlplane.services import hash_key, revoke_api_key

    _fast(live_app, live_router.router_key)
    key = ApiKey.objects.get(key_hash=hash_key(live_router.router_key))

    revoke_api_key(key=key, actor=ACTOR)
    took = wait_until(lambda: _get(live_app, live_router.router_key).status_code == 401, 2.0)

    assert took < 1.0  # the NOTIFY, not the 0.5 s re-check
    # Several connections, so both worker processes answer: none still accepts it (waiting
    # for that state: 8 new connections take a while on a busy machine; the re-check alone
    # would remove the key within 0.5 s).
    wait_until(
        lambda: {_get(live_app, live_router.router_key).status_code for _ in range(8)} == {401},
        3.0,
    )


def test_revoked_key__parked_long_poll__released(live_app, live_router):
    from controlplane.models import ApiKey
    from controlplane.services import hash_key, revoke_api_key

    result: dict[str, httpx.Response] = {}
    with fast_connection(live_app, live_router.router_key) as connection:
        etag = _get(connection, live_router.router_key).headers["etag"]
        thread = threading.Thread(
            target=lambda: result.setdefault(
                "r", _get(connection, live_router.router_key, etag=etag, wait=30)
            )
        )
        thread.start()
        time.sleep(0.5)  # parked by now (were it not, the revoked key gets 401 at once anyway)
        key = ApiKey.objects.get(key_hash=hash_key(live_router.router_key))
        revoke_api_key(key=key, actor=ACTOR)
        thread.join(5)

    assert result["r"].status_code == 401


def test_new_key__works_at_once_through_django(live_app, live_router):
    from controlplane.services import create_api_key

    _, raw = create_api_key(router=live_router.router(), role="router", actor=ACTOR)

    response = _get(live_app, raw)  # before any re-check could have loaded it

    assert response.status_code == 200
    assert response.json()["router"] == live_router.slug


def test_unknown_key__401(live_app):
    assert _get(live_app, "rp_not-a-key").status_code == 401


def test_clients__recorded_in_batches__shown_by_the_clients_api(live_app, live_router):
    from controlplane.models import RouterClient

    etag = _fast(live_app, live_router.router_key).headers["etag"]
    for _ in range(5):
        _get(
            live_app,
            live_router.router_key,
            etag=etag,
            **{"X-Routeplane-Client": "host-a-123", "User-Agent": "routeplane-sdk/9.8.7 (x)"},
        )

    wait_until(
        lambda: (
            RouterClient.objects.filter(router_id=live_router.router_id, client_id="host-a-123")
            .exclude(revision=None)
            .exists()
        ),
        timeout=3,
        interval=0.1,
    )
    row = RouterClient.objects.get(router_id=live_router.router_id, client_id="host-a-123")
    assert row.sdk_version == "9.8.7"
    assert row.revision == 1
    listed = httpx.get(
        f"{live_app}/api/v1/routers/{live_router.slug}/clients",
        headers={"Authorization": f"Bearer {live_router.viewer_key}"},
    ).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [c["client_id"] for c in rows if c["client_id"] == "host-a-123"] == ["host-a-123"]
    assert next(c for c in rows if c["client_id"] == "host-a-123")["revision"] == 1


def test_rate_limit__per_key__429_with_retry_after(flags_database_url, live_router):
    env = live_env(flags_database_url, ROUTEPLANE_FLAGS_RATE="1", ROUTEPLANE_FLAGS_BURST="3")
    with uvicorn_server(env, args=("--lifespan", "off")) as (base, _process):
        # No lifespan: the fast path starts on the first poll, which Django answers meanwhile.
        _fast(base, live_router.router_key, timeout=5)
        answers = [_get(base, live_router.router_key) for _ in range(5)]
        statuses = [a.status_code for a in answers]
        refused = next(a for a in answers if a.status_code == 429)
        other = _get(base, live_router.operator_key)

    assert 429 in statuses
    limited = statuses.index(429)
    assert int(refused.headers["retry-after"]) >= 1
    assert all(s == 200 for s in statuses[:limited])
    assert other.status_code == 200  # the limit is per key
