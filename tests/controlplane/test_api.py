"""The operator API (README, "API"): auth matrix, writes, errors, If-Match, schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from controlplane.models import AuditEntry, ConfigRevision, Router
from controlplane.services import create_router

pytestmark = pytest.mark.django_db

BASE = "/api/v1"


def current_number(router) -> int:
    router.refresh_from_db()
    return router.current_revision.number


# --- auth matrix ---------------------------------------------------------------------------

READS = [
    ("get", "/routers/", None),
    ("get", "/routers/checkout/", None),
    ("get", "/routers/checkout/config", None),
    ("get", "/routers/checkout/revisions/", None),
    ("get", "/routers/checkout/revisions/1/diff", None),
    ("get", "/audit/", None),
    ("get", "/routers/checkout/clients", None),
    ("get", "/routers/checkout/keys", None),
    ("get", "/routers/checkout/guardrail", None),
]
WRITES = [
    ("patch", "/routers/checkout/config", {"threshold": 0.2}),
    ("put", "/routers/checkout/flags/routellm_enabled", {"enabled": True, "rollout_percent": 10}),
    ("post", "/routers/checkout/phase", {"phase": "monitoring"}),
    ("post", "/routers/checkout/kill-switch", {"engaged": True, "reason": "test"}),
    ("post", "/routers/checkout/rollback", {"revision": 1}),
    ("post", "/routers/checkout/keys", {"role": "viewer"}),
    ("put", "/routers/checkout/guardrail", {"enabled": True}),
    ("post", "/routers/", {"slug": "another"}),
]
# A router key may read its own router's summary (GET routers/ lists only that one); every
# other read in READS needs a viewer or operator key.
ROUTER_KEY_READS = {"/routers/", "/routers/checkout/"}


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_anonymous__401_with_message(anonymous_api, router, method, path, body):
    response = getattr(anonymous_api, method)(BASE + path, body, format="json")
    assert response.status_code == 401
    assert response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_bad_key__401(router):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer rp_not-a-real-key")
    assert client.get(f"{BASE}/routers/").status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_viewer__403_on_writes_and_nothing_written(viewer_api, router, method, path, body):
    before = ConfigRevision.objects.count()
    response = getattr(viewer_api, method)(BASE + path, body, format="json")
    assert response.status_code == 403
    assert "operator" in response.json()["detail"]
    assert ConfigRevision.objects.count() == before


@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_viewer__reads(viewer_api, router, method, path, body):
    assert getattr(viewer_api, method)(BASE + path).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_router_key__403_on_operator_endpoints(router_api, router, method, path, body):
    before = ConfigRevision.objects.count()
    response = getattr(router_api, method)(BASE + path, body, format="json")
    if method == "get" and path in ROUTER_KEY_READS:
        assert response.status_code == 200
    else:
        assert response.status_code == 403, path
    assert ConfigRevision.objects.count() == before


@pytest.mark.parametrize(
    ("role", "code"), [("router", 403), ("viewer", 403), ("operator", 204), (None, 401)]
)
def test_revoke_key__only_an_operator(router, operator_key, actor, role, code):
    from controlplane.models import ApiKey
    from controlplane.services import create_api_key

    victim, _ = create_api_key(router=router, role="router", actor=actor, name="victim")
    client = APIClient()
    if role:
        _, raw = create_api_key(router=router, role=role, actor=actor, name=f"{role} caller")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.delete(f"{BASE}/routers/checkout/keys/{victim.prefix}")
    assert response.status_code == code
    revoked = ApiKey.objects.get(pk=victim.pk).revoked_at is not None
    assert revoked == (code == 204)


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
def test_operator__2xx(operator_api, router, method, path, body):
    response = getattr(operator_api, method)(BASE + path, body, format="json")
    if path == "/routers/" and method == "post":
        # keys belong to one router; routers are created by users
        assert response.status_code == 403
    else:
        assert 200 <= response.status_code < 300, (path, response.content)


def test_operator_user_session__may_create_router(operator_user):
    client = APIClient()
    client.force_login(operator_user)
    response = client.post(f"{BASE}/routers/", {"slug": "payments"}, format="json")
    assert response.status_code == 201
    assert response.json()["revision"] == 1
    assert AuditEntry.objects.get(action="router.create").actor == "user:olivia"


def test_user_without_role__403(db, django_user_model):
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("nobody", password="x" * 12))
    response = client.get(f"{BASE}/audit/")
    assert response.status_code == 403
    assert "role" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/phase"), ("get", "/config"), ("get", "/clients"), ("get", "/"), ("get", "/keys")],
)
def test_key_of_another_router__404_like_a_missing_one(operator_api, router, actor, method, path):
    create_router(slug="other", actor=actor)
    other = getattr(operator_api, method)(f"{BASE}/routers/other{path}", {}, format="json")
    missing = getattr(operator_api, method)(f"{BASE}/routers/ghost{path}", {}, format="json")
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    assert Router.objects.get(slug="other").current_revision.number == 1


def test_router_list__key_sees_only_its_router(router_api, router, actor):
    create_router(slug="other", actor=actor)
    assert [r["slug"] for r in router_api.get(f"{BASE}/routers/").json()] == ["checkout"]


# --- writes ---------------------------------------------------------------------------------


def test_set_phase__answers_new_revision_and_audits_key_actor(operator_api, router, operator_key):
    response = operator_api.post(
        f"{BASE}/routers/checkout/phase",
        {"phase": "single_domain", "domain": "technical"},
        format="json",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["revision"] == 2
    assert body["phase"] == "single_domain"
    assert body["flags"]["routellm_technical_domain"] == {"enabled": True, "rollout_percent": 100}
    assert response["ETag"] == '"2"'
    entry = AuditEntry.objects.filter(router=router).first()
    assert entry.actor == f"key:{operator_key[:11]}"
    assert entry.source_ip == "10.1.2.3"
    assert entry.action == "phase.set"


def test_put_config__every_field(operator_api, router):
    config = operator_api.get(f"{BASE}/routers/checkout/config").json()
    config["threshold"] = 0.25
    response = operator_api.put(f"{BASE}/routers/checkout/config", config, format="json")
    assert response.status_code == 200
    assert response.json()["config"] == config


def test_put_config__missing_fields__400(operator_api, router):
    response = operator_api.put(
        f"{BASE}/routers/checkout/config", {"threshold": 0.25}, format="json"
    )
    assert response.status_code == 400
    assert "strong_model" in response.json()["errors"]
    assert current_number(router) == 1


def test_kill_switch_and_rollback(operator_api, router):
    operator_api.post(f"{BASE}/routers/checkout/phase", {"phase": "full"}, format="json")
    killed = operator_api.post(
        f"{BASE}/routers/checkout/kill-switch",
        {"engaged": True, "reason": "error spike"},
        format="json",
    ).json()
    assert killed["kill_switch"] is True
    rolled = operator_api.post(
        f"{BASE}/routers/checkout/rollback", {"revision": 1}, format="json"
    ).json()
    assert rolled["revision"] == 4
    assert rolled["phase"] == "disabled"
    assert rolled["restored_from"] == 1
    assert rolled["kill_switch"] is True


def test_revision_diff(operator_api, router):
    operator_api.patch(f"{BASE}/routers/checkout/config", {"threshold": 0.3}, format="json")
    body = operator_api.get(f"{BASE}/routers/checkout/revisions/2/diff").json()
    assert body == {
        "revision": 2,
        "previous": 1,
        "changes": {"config.threshold": {"before": 0.11593, "after": 0.3}},
    }
    assert operator_api.get(f"{BASE}/routers/checkout/revisions/9/diff").status_code == 404


def test_audit__newest_first_with_contract_fields(operator_api, router):
    operator_api.patch(f"{BASE}/routers/checkout/config", {"threshold": 0.3}, format="json")
    body = operator_api.get(f"{BASE}/audit/").json()
    first = body["results"][0]
    assert {"router", "actor", "action", "diff", "reason", "created_at"} <= set(first)
    assert first["router"] == "checkout"
    assert first["action"] == "config.update"
    assert body["count"] >= 2
    filtered = operator_api.get(f"{BASE}/audit/?action=router.create").json()
    assert [e["action"] for e in filtered["results"]] == ["router.create"]


def test_keys__created_once_listed_without_secret_and_revoked(operator_api, router):
    created = operator_api.post(
        f"{BASE}/routers/checkout/keys", {"role": "router", "name": "edge"}, format="json"
    ).json()
    raw = created["key"]
    assert raw.startswith("rp_")
    listed = operator_api.get(f"{BASE}/routers/checkout/keys").json()
    assert raw not in str(listed)
    assert created["prefix"] in [k["prefix"] for k in listed]

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(f"{BASE}/routers/checkout/").status_code == 200
    response = operator_api.delete(f"{BASE}/routers/checkout/keys/{created['prefix']}")
    assert response.status_code == 204
    assert client.get(f"{BASE}/routers/checkout/").status_code == 401


# --- If-Match -------------------------------------------------------------------------------


def test_if_match__current_applies_stale_412_and_nothing_written(operator_api, router):
    ok = operator_api.patch(
        f"{BASE}/routers/checkout/config",
        {"threshold": 0.2},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert ok.status_code == 200
    stale = operator_api.patch(
        f"{BASE}/routers/checkout/config",
        {"threshold": 0.9},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert stale.status_code == 412
    assert stale.json()["current_revision"] == 2
    assert current_number(router) == 2
    assert operator_api.get(f"{BASE}/routers/checkout/config").json()["threshold"] == 0.2


def test_step_back__stale_if_match__412_and_nothing_written(operator_api, router):
    operator_api.post(f"{BASE}/routers/checkout/phase", {"phase": "monitoring"}, format="json")
    operator_api.post(f"{BASE}/routers/checkout/phase", {"phase": "full"}, format="json")
    audits = AuditEntry.objects.count()
    stale = operator_api.post(
        f"{BASE}/routers/checkout/phase/step-back", {}, format="json", HTTP_IF_MATCH='"2"'
    )
    assert stale.status_code == 412
    assert stale.json()["current_revision"] == 3
    assert current_number(router) == 3
    assert AuditEntry.objects.count() == audits
    ok = operator_api.post(
        f"{BASE}/routers/checkout/phase/step-back", {}, format="json", HTTP_IF_MATCH='"3"'
    )
    assert ok.status_code == 200
    assert current_number(router) == 4
    assert router.current_revision.phase == "monitoring"


@pytest.mark.parametrize("if_match", ["yesterday", '"\u00b2"', '"-1"'])
def test_if_match__garbage__400(operator_api, router, if_match):
    response = operator_api.patch(
        f"{BASE}/routers/checkout/config",
        {"threshold": 0.2},
        format="json",
        HTTP_IF_MATCH=if_match,
    )
    assert response.status_code == 400
    assert "If-Match" in response.json()["errors"]
    assert current_number(router) == 1


# --- bad input ------------------------------------------------------------------------------

BAD_INPUT = [
    ("patch", "/routers/checkout/config", {"threshold": 1.5}, "threshold"),
    ("patch", "/routers/checkout/config", {"router_type": "gpt"}, "router_type"),
    ("patch", "/routers/checkout/config", {"max_retry_attempts": -2}, "max_retry_attempts"),
    ("patch", "/routers/checkout/config", {"timeout_seconds": 0}, "timeout_seconds"),
    (
        "patch",
        "/routers/checkout/config",
        {"domain_routing_overrides": {"finance": {}}},
        "domain_routing_overrides.finance",
    ),
    ("patch", "/routers/checkout/config", [1, 2], "body"),
    ("post", "/routers/checkout/phase", {"phase": "turbo"}, "phase"),
    ("post", "/routers/checkout/phase", {"phase": "single_domain"}, "domain"),
    (
        "post",
        "/routers/checkout/phase",
        {"phase": "single_domain", "domain": "finance"},
        "domain",
    ),
    ("put", "/routers/checkout/flags/routellm_enabled", {"enabled": "yes"}, "enabled"),
    (
        "put",
        "/routers/checkout/flags/routellm_enabled",
        {"enabled": True, "rollout_percent": 101},
        "rollout_percent",
    ),
    ("put", "/routers/checkout/flags/routellm_turbo", {"enabled": True}, "name"),
    ("post", "/routers/checkout/kill-switch", {"engaged": True}, "reason"),
    ("post", "/routers/checkout/rollback", {"revision": 42}, "revision"),
    ("post", "/routers/checkout/rollback", {"revision": "one"}, "revision"),
    ("post", "/routers/checkout/keys", {"role": "admin"}, "role"),
    ("post", "/routers/", {"slug": "has spaces"}, "slug"),
    # PostgreSQL cannot store NUL: refused with the field's path, not a 500 from the database.
    ("patch", "/routers/checkout/config", {"strong_model": "gpt\x00-4"}, "strong_model"),
    ("patch", "/routers/checkout/config", {"threshold": 0.2, "reason": "\x00"}, "reason"),
    (
        "patch",
        "/routers/checkout/config",
        {"domain_routing_overrides": {"legal": {"model": "a\x00"}}},
        "domain_routing_overrides.legal.model",
    ),
    ("put", "/routers/checkout/guardrail", {"min_requests": 10**10}, "min_requests"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_INPUT)
def test_bad_input__400_with_field_message_and_revision_unchanged(
    operator_api, operator_user, router, method, path, body, field
):
    client = operator_api
    if path == "/routers/":
        client = APIClient()
        client.force_login(operator_user)
    response = getattr(client, method)(BASE + path, body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors and errors[field][0], errors
    assert current_number(router) == 1


def test_malformed_json__400(operator_api, router):
    response = operator_api.generic(
        "PATCH", f"{BASE}/routers/checkout/config", b'{"threshold": 0.2', "application/json"
    )
    assert response.status_code == 400
    assert "Malformed JSON" in response.json()["errors"]["body"][0]
    assert current_number(router) == 1


def test_oversized_body__413(operator_api, router, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = b'{"threshold": 0.2, "strong_model": "' + b"x" * 2000 + b'"}'
    response = operator_api.generic(
        "PATCH", f"{BASE}/routers/checkout/config", body, "application/json"
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert current_number(router) == 1


def test_audit__nul_in_a_filter__400_naming_it(operator_api, router):
    response = operator_api.get(f"{BASE}/audit/", {"actor": "user\x00"})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["actor"]


def test_key_prefix__not_a_prefix__404(operator_api, router):
    assert operator_api.delete(f"{BASE}/routers/checkout/keys/rp_%00").status_code == 404


def test_unknown_router__404(operator_api, router):
    assert operator_api.get(f"{BASE}/routers/nope/").status_code == 404


# --- schema, health -------------------------------------------------------------------------


def test_openapi_schema__valid_openapi_3(anonymous_api):
    from openapi_spec_validator import validate

    response = anonymous_api.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    assert "/api/v1/routers/{slug}/phase" in schema["paths"]
    assert "/api/v1/flags" in schema["paths"]


def test_api_docs_page__served_without_cdn(anonymous_api):
    response = anonymous_api.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html


def test_healthz_and_readyz(anonymous_api):
    assert anonymous_api.get("/healthz").json() == {"status": "ok"}
    ready = anonymous_api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"


def test_readyz__redis_down__degraded(anonymous_api, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    ready = anonymous_api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"


# --- a write that changes nothing -------------------------------------------------------------

UNCHANGED = [
    ("put", "/routers/checkout/config", "DEFAULT_CONFIG"),
    ("patch", "/routers/checkout/config", {"threshold": 0.11593, "reason": "same again"}),
    ("patch", "/routers/checkout/config", {}),
    ("put", "/routers/checkout/flags/routellm_enabled", {"enabled": False, "rollout_percent": 0}),
    ("post", "/routers/checkout/phase", {"phase": "disabled"}),
]


@pytest.mark.parametrize(("method", "path", "body"), UNCHANGED)
def test_unchanged_write__200_current_revision_changed_false(
    operator_api, router, method, path, body
):
    from routing.config import default_config_dict

    body = default_config_dict() if body == "DEFAULT_CONFIG" else body
    audit_rows = AuditEntry.objects.count()

    response = getattr(operator_api, method)(BASE + path, body, format="json", HTTP_IF_MATCH='"1"')

    assert response.status_code == 200
    assert (response.json()["revision"], response.json()["changed"]) == (1, False)
    assert response["ETag"] == '"1"'
    assert current_number(router) == 1
    assert ConfigRevision.objects.filter(router=router).count() == 1
    assert AuditEntry.objects.count() == audit_rows


def test_changed_write__200_new_revision_changed_true(operator_api, router):
    response = operator_api.patch(
        f"{BASE}/routers/checkout/config", {"threshold": 0.3}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["revision"], response.json()["changed"]) == (2, True)


def test_schema__audit_list_documented_as_a_page(operator_api, router):
    # Found by schemathesis: the answer is DRF's page, the schema said a bare list.
    schema = operator_api.get("/api/schema/", {"format": "json"}).json()
    ok = schema["paths"]["/api/v1/audit/"]["get"]["responses"]["200"]["content"]
    ref = ok["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    page = schema["components"]["schemas"][ref]
    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    assert set(operator_api.get(f"{BASE}/audit/").json()) == set(page["properties"])


# --- clients -------------------------------------------------------------------------------


def test_clients__paginated_most_recent_first(router, viewer_api):
    from datetime import timedelta

    from django.utils import timezone

    from controlplane.models import RouterClient

    now = timezone.now()
    RouterClient.objects.bulk_create(
        RouterClient(router=router, client_id=f"proc-{i:03}", last_seen=now - timedelta(seconds=i))
        for i in range(150)
    )
    first = viewer_api.get("/api/v1/routers/checkout/clients").json()
    assert first["count"] == 150
    assert first["previous"] is None
    assert len(first["results"]) == 100  # the default page
    assert first["results"][0]["client_id"] == "proc-000"

    second = viewer_api.get(first["next"]).json()
    assert [c["client_id"] for c in second["results"]] == [f"proc-{i:03}" for i in range(100, 150)]
    assert second["next"] is None

    small = viewer_api.get("/api/v1/routers/checkout/clients?page_size=7&page=3").json()
    assert [c["client_id"] for c in small["results"]] == [f"proc-{i:03}" for i in range(14, 21)]
