"""Two independent web servers on one database and one Redis, as in a scaled-out deployment.

Each replica is its own uvicorn (own port, own processes, own flags cache): a write on one must
reach long-pollers on the other through PostgreSQL NOTIFY, an event batch posted to both counts
once, and a key's rate limit is one count in Redis, not one per replica.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from tests import flags_live
from tests.flags_live import flush_database, live_env, uvicorn_server, wait_until

committed = flags_live.committed
flags_database_url = flags_live.flags_database_url
live_router = flags_live.live_router

# Not transactional: the servers stop before the database is flushed (tests/flags_live.py).
pytestmark = pytest.mark.slow

RATE = 12  # requests per minute and key, on both replicas


@pytest.fixture(autouse=True)
def _no_flush_thread():
    from controlplane.clients import recorder

    recorder.autostart = False
    yield
    recorder.autostart = True


@pytest.fixture(scope="module")
def replicas(flags_database_url, django_db_blocker) -> Iterator[tuple[str, str]]:
    """Two replicas (one worker each) with a low per-key API rate."""
    env = live_env(flags_database_url, ROUTEPLANE_API_RATE=f"{RATE}/min")
    with uvicorn_server(env) as (a, _), uvicorn_server(env) as (b, _):
        yield a, b
    flush_database(django_db_blocker)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _flags(base: str, key: str, **params: object) -> httpx.Response:
    return httpx.get(f"{base}/api/v1/flags", headers=_auth(key), params=params, timeout=30)


def test_write_on_one_replica__reaches_long_pollers_on_the_other_within_a_second(
    replicas, live_router
):
    a, b = replicas
    first: dict[str, httpx.Response] = {}
    # The other replica's fast path learns a brand-new key within its re-check interval (until
    # then Django answers, and Django never holds a long-poll).
    wait_until(
        lambda: _flags(b, live_router.router_key).headers.get("x-routeplane-flags") == "fast",
        timeout=5,
    )
    current = _flags(b, live_router.router_key)
    etag = current.headers["ETag"]
    answered = threading.Event()

    def long_poll() -> None:
        first["response"] = httpx.get(
            f"{b}/api/v1/flags",
            headers={**_auth(live_router.router_key), "If-None-Match": etag},
            params={"wait": 20},
            timeout=30,
        )
        answered.set()

    poller = threading.Thread(target=long_poll)
    poller.start()
    # Parked: no answer while nothing changes.
    assert not answered.wait(0.5)
    write = httpx.put(
        f"{a}/api/v1/routers/{live_router.slug}/flags/routellm_medical_domain",
        headers=_auth(live_router.operator_key),
        json={"enabled": True, "rollout_percent": 40},
        timeout=10,
    )
    assert write.status_code == 200, write.text
    # The contract: a write is visible on every replica within 1 s of its 2xx answer.
    assert answered.wait(1.0), "the other replica's long-poll did not answer within 1 s"
    poller.join()
    response = first["response"]
    assert response.status_code == 200
    document = response.json()
    assert document["revision"] == write.json()["revision"]
    assert document["flags"]["routellm_medical_domain"] == {
        "enabled": True,
        "rollout_percent": 40,
    }


def _batch(n: int) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [
        {"event_id": str(uuid.uuid4()), "timestamp": now, "selected_model": "gpt-3.5-turbo"}
        for _ in range(n)
    ]


def test_same_batch_posted_to_both_replicas__stored_once(replicas, live_router):
    from tracking.models import Event

    a, b = replicas
    events = _batch(50)

    def post(base: str) -> dict:
        response = httpx.post(
            f"{base}/api/v1/events",
            headers=_auth(live_router.router_key),
            json={"events": events},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(2) as pool:  # at once: the two inserts race
        results = list(pool.map(post, (a, b)))
    assert sum(r["accepted"] for r in results) == 50
    assert sum(r["duplicates"] for r in results) == 50
    assert Event.objects.filter(router_id=live_router.router_id).count() == 50


def test_rate_limit__one_count_shared_by_both_replicas(replicas, live_router):
    from django.core.cache import cache

    a, b = replicas
    # Key ids restart after a flush: counts an earlier run left in this minute's window must go.
    cache.clear()
    url = "/api/v1/reports/savings"
    # A parallel burst over both replicas with one key: exactly RATE get through in the window.
    # Start it early in a minute, so the burst stays inside one window.
    second = datetime.now(UTC).timestamp() % 60
    if second > 45:
        time.sleep(60 - second + 0.1)
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda i: (
                    httpx.get(
                        f"{(a, b)[i % 2]}{url}", headers=_auth(live_router.viewer_key), timeout=30
                    ).status_code
                ),
                range(2 * RATE + 6),
            )
        )
    assert codes.count(200) == RATE, codes
    assert codes.count(429) == RATE + 6
    limited = httpx.get(f"{b}{url}", headers=_auth(live_router.viewer_key), timeout=30)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another key of the same router has a count of its own.
    assert httpx.get(f"{a}{url}", headers=_auth(live_router.router_key)).status_code == 200
