"""POST /api/v1/events through the ASGI fast path (real uvicorn) and through the DRF view: the
same status, the same bytes, for every kind of answer.

The fast path answers what it can authenticate from memory; the DRF view, called in-process,
is its fallback. Each side posts to its own router (same starting state), so counts match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
import pytest
from rest_framework.test import APIClient

from tests import flags_live
from tests.flags_live import live_env, uvicorn_server, wait_until
from tests.tracking.conftest import make_event

committed = flags_live.committed
flags_database_url = flags_live.flags_database_url
live_router = flags_live.live_router

# Not django_db: the data is committed (the server must see it); see tests/flags_live.py.
pytestmark = [pytest.mark.slow]

RATE = "20/min"  # low enough to reach in a test, high enough for the others


@pytest.fixture(scope="module")
def live_app(flags_database_url, django_db_blocker) -> Iterator[str]:
    env = live_env(flags_database_url, ROUTEPLANE_API_RATE=RATE)
    with uvicorn_server(env, workers=2) as (base, _process):
        yield base
    flags_live.flush_database(django_db_blocker)


@pytest.fixture
def other_router(committed):
    """A second router, in the same state as live_router: the DRF side posts there."""
    return flags_live.make_live_router()


@contextmanager
def fast_connection(base: str, key: str) -> Iterator[httpx.Client]:
    """A keep-alive connection to a worker whose fast path knows `key` (loaded on its re-check,
    within ~0.5 s of the key's creation): requests on it stay with that worker."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, limits=limits, headers=headers, timeout=30) as client:
        wait_until(
            lambda: _post(client, b'{"events": []}').headers.get("x-routeplane-ingest") == "fast",
            5,
            interval=0.05,
        )
        yield client


def _post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/api/v1/events", content=body)


def _drf(key: str, body: bytes):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api.post("/api/v1/events", body, content_type="application/json")


def _batch() -> list[dict]:
    bad_tokens = make_event(prompt_tokens=-5)
    no_model = make_event()
    del no_model["selected_model"]
    first = make_event(prompt_tokens=10, completion_tokens=5)
    return [first, bad_tokens, make_event(model_tier="weak"), dict(first), no_model, "x"]


BODIES = {
    "good-and-rejected-items": lambda: orjson.dumps({"events": _batch()}),
    "malformed-json": lambda: b'{"events": [',
    "not-an-object": lambda: b"[1, 2]",
    "events-not-a-list": lambda: b'{"events": {}}',
    "over-1000-events": lambda: orjson.dumps({"events": [make_event()] * 1001}),
    "nul-in-a-field": lambda: orjson.dumps({"events": [make_event(ab_group="a\x00b")]}),
}


@pytest.mark.parametrize("kind", list(BODIES))
def test_fast_path_and_drf_view__same_status_and_bytes(live_app, live_router, other_router, kind):
    body = BODIES[kind]()
    with fast_connection(live_app, live_router.router_key) as connection:
        fast = [_post(connection, body), _post(connection, body)]  # the second: duplicates
    drf = [_drf(other_router.router_key, body), _drf(other_router.router_key, body)]

    for fast_answer, drf_answer in zip(fast, drf, strict=True):
        assert fast_answer.headers["x-routeplane-ingest"] == "fast"
        assert fast_answer.status_code == drf_answer.status_code
        assert fast_answer.content == drf_answer.content
        assert fast_answer.headers["content-type"] == "application/json"


def test_fast_path__events_stored_once__counted_as_the_view_counts(live_app, live_router):
    from tracking.models import Event

    events = [make_event(prompt_tokens=i) for i in range(50)]
    with fast_connection(live_app, live_router.router_key) as connection:
        first = _post(connection, orjson.dumps({"events": events})).json()
        again = _post(connection, orjson.dumps({"events": events})).json()

    assert first == {"accepted": 50, "duplicates": 0, "rejected": []}
    assert again == {"accepted": 0, "duplicates": 50, "rejected": []}
    assert Event.objects.filter(router_id=live_router.router_id).count() == 50


def test_operator_key__posts_through_the_fast_path(live_app, live_router):
    with fast_connection(live_app, live_router.operator_key) as connection:
        answer = _post(connection, orjson.dumps({"events": [make_event()]}))

    assert answer.status_code == 200
    assert answer.json()["accepted"] == 1


@pytest.mark.parametrize(
    ("key_of", "status"),
    [(lambda r: r.viewer_key, 403), (lambda r: "rp_not-a-key", 401), (lambda r: None, 401)],
    ids=["viewer-key", "unknown-key", "no-key"],
)
def test_not_for_the_fast_path__django_answers__as_the_view_does(
    live_app, live_router, key_of, status
):
    key = key_of(live_router)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = orjson.dumps({"events": [make_event()]})

    answer = httpx.post(f"{live_app}/api/v1/events", content=body, headers=headers)
    drf = APIClient().post(
        "/api/v1/events",
        body,
        content_type="application/json",
        **({"HTTP_AUTHORIZATION": headers["Authorization"]} if key else {}),
    )

    assert answer.status_code == drf.status_code == status
    assert "x-routeplane-ingest" not in answer.headers
    assert answer.content == drf.content


def test_rate_limit__shared_with_the_view__same_429_and_retry_after(
    live_app, live_router, settings
):
    from django.core.cache import cache

    from controlplane.models import ApiKey
    from controlplane.services import hash_key

    key = ApiKey.objects.get(key_hash=hash_key(live_router.router_key))
    cache.delete(f"throttle_api_key_key:{key.pk}")  # a counter of an earlier run's key id
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "api_key": RATE,
        },
    }
    body = orjson.dumps({"events": []})
    with fast_connection(live_app, live_router.router_key) as connection:
        statuses = []
        while 429 not in statuses and len(statuses) < 30:
            statuses.append(_post(connection, body).status_code)
        fast = _post(connection, body)
    drf = _drf(live_router.router_key, body)  # the same counter: refused too

    assert set(statuses[:-1]) == {200}
    assert statuses[-1] == 429
    pattern = r'\{"detail":"Request was throttled\. Expected available in (\d+) seconds?\."\}'
    for answer, retry_after in ((fast, fast.headers.get("retry-after")), (drf, drf["Retry-After"])):
        assert answer.status_code == 429
        match = re.fullmatch(pattern, answer.content.decode())
        assert match, answer.content
        assert retry_after == match.group(1)
    assert fast.headers["x-routeplane-ingest"] == "fast"
