"""GET /api/v1/flags through Django (the fast path's fallback): same document, few queries."""

from __future__ import annotations

import time

import orjson
import pytest

from controlplane.clients import recorder
from controlplane.flagdoc import render_document
from controlplane.models import RouterClient
from controlplane.selectors import current_revision
from controlplane.services import set_flag


@pytest.fixture(autouse=True)
def _no_flush_thread():
    recorder.autostart = False
    recorder.drain()
    yield
    recorder.autostart = True
    recorder.drain()


def test_flags__router_key__current_document_with_strong_etag(router, router_api):
    response = router_api.get("/api/v1/flags")

    router.refresh_from_db()
    expected = render_document(
        router_id=router.pk, slug=router.slug, revision=current_revision(router=router)
    )
    assert response.status_code == 200
    assert response.content == expected.body
    assert response["ETag"] == expected.etag
    assert not response["ETag"].startswith("W/")
    document = orjson.loads(response.content)
    assert set(document) >= {"router", "revision", "phase", "kill_switch", "config", "flags"}
    assert document["router"] == "checkout"


def test_flags__query_count__bounded(router, router_api, django_assert_max_num_queries):
    router_api.get("/api/v1/flags")  # last_used_at written once a minute, not per request

    with django_assert_max_num_queries(4):
        response = router_api.get("/api/v1/flags")
    assert response.status_code == 200


def test_flags__if_none_match_current__304(router, router_api):
    etag = router_api.get("/api/v1/flags")["ETag"]

    response = router_api.get("/api/v1/flags", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert response["ETag"] == etag


@pytest.mark.parametrize("method", ["get", "head"])
def test_flags__304__no_content_type(router, router_api, method):
    etag = router_api.get("/api/v1/flags")["ETag"]

    response = getattr(router_api, method)("/api/v1/flags", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert "Content-Type" not in response.headers
    assert response.content == b""


def test_flags__etag_changes_exactly_when_document_does(router, router_api, actor):
    before = router_api.get("/api/v1/flags")["ETag"]
    assert router_api.get("/api/v1/flags")["ETag"] == before

    set_flag(router=router, name="routellm_enabled", enabled=True, rollout_percent=10, actor=actor)

    assert router_api.get("/api/v1/flags")["ETag"] != before


def test_flags__stale_etag_with_wait__answers_at_once(router, router_api):
    started = time.monotonic()
    response = router_api.get("/api/v1/flags?wait=30", HTTP_IF_NONE_MATCH='"stale"')

    assert response.status_code == 200
    assert time.monotonic() - started < 1.0


def test_flags__current_etag_with_wait__304_at_once_never_held_in_django(router, router_api):
    # Long-polls are held only by the ASGI fast path: a Django thread never sleeps on one.
    etag = router_api.get("/api/v1/flags")["ETag"]

    started = time.monotonic()
    response = router_api.get("/api/v1/flags?wait=60", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert time.monotonic() - started < 10


def test_flags__no_key__401(db, anonymous_api):
    assert anonymous_api.get("/api/v1/flags").status_code in (401, 403)


def test_flags__dashboard_user__403(client, operator_user):
    client.force_login(operator_user)

    assert client.get("/api/v1/flags").status_code == 403


def test_flags__records_client_in_memory__one_batch_write(router, router_api):
    for _ in range(3):
        router_api.get(
            "/api/v1/flags",
            HTTP_X_ROUTEPLANE_CLIENT="proc-1",
            HTTP_USER_AGENT="routeplane-sdk/1.2.3",
        )
    assert not RouterClient.objects.exists()  # nothing written per poll

    assert recorder.flush() == 1

    row = RouterClient.objects.get(router=router, client_id="proc-1")
    assert row.sdk_version == "1.2.3"
    assert row.revision == 1
    assert row.user_agent == "routeplane-sdk/1.2.3"
