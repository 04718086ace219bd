"""Every field of every operator write, given each wrong JSON type: 400 naming the field's path,
nothing written (README: API, bad input)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from rest_framework.test import APIClient

from routing.config import default_config_dict

pytestmark = pytest.mark.django_db

BASE = "/api/v1/routers/checkout"

# One probe per JSON type. Strings and numbers are the ones DRF would coerce ("true" into a
# boolean, "1" into a number, 7 into a string), so a lenient field fails the test.
JSON_TYPES = ("object", "array", "string", "number", "null", "bool")


def probe(json_type: str, field_type: str) -> Any:
    return {
        "object": {},
        "array": [],
        "string": {"bool": "true", "number": "1"}.get(field_type, "x"),
        "number": 1 if field_type == "bool" else 7,
        "null": None,
        "bool": True,
    }[json_type]


CONFIG_TYPES = {
    "enabled": "bool",
    "router_type": "string",
    "threshold": "number",
    "strong_model": "string",
    "weak_model": "string",
    "fallback_enabled": "bool",
    "max_retry_attempts": "number",
    "timeout_seconds": "number",
    "cost_tracking_enabled": "bool",
    "cost_optimization_target": "number",
    "performance_monitoring_enabled": "bool",
    "metrics_retention_days": "number",
    "domain_specific_routing": "bool",
    "domain_routing_overrides": "object",
    "reason": "string",
}
OVERRIDE_TYPES = {
    "enabled": "bool",
    "threshold": "number",
    "strong_model": "string",
    "weak_model": "string",
    "router_type": "string",
    "default_model": "string",
}
OVERRIDES = {"domain_routing_overrides": {"medical": {"enabled": True}}}

# (name, method, path, valid body, field path, JSON type of the field, null allowed)
FIELDS: list[tuple[str, str, str, dict[str, Any], tuple[str, ...], str, bool]] = [
    *[
        ("config-put", "put", "/config", default_config_dict(), (name,), kind, False)
        for name, kind in CONFIG_TYPES.items()
    ],
    *[
        ("config-patch", "patch", "/config", {}, (name,), kind, False)
        for name, kind in CONFIG_TYPES.items()
    ],
    *[
        (
            f"config-{method}",
            method,
            "/config",
            {**(default_config_dict() if method == "put" else {}), **OVERRIDES},
            path,
            kind,
            False,
        )
        for method in ("put", "patch")
        for path, kind in [
            (("domain_routing_overrides", "medical"), "object"),
            *[(("domain_routing_overrides", "medical", k), t) for k, t in OVERRIDE_TYPES.items()],
        ]
    ],
    *[
        ("flag", "put", "/flags/routellm_enabled", {"enabled": True}, (name,), kind, False)
        for name, kind in [("enabled", "bool"), ("rollout_percent", "number"), ("reason", "string")]
    ],
    *[
        ("phase", "post", "/phase", {"phase": "single_domain", "domain": "medical"}, (n,), k, z)
        for n, k, z in [("phase", "string", False), ("domain", "string", True)]
        + [("reason", "string", False)]
    ],
    ("step-back", "post", "/phase/step-back", {}, ("reason",), "string", False),
    *[
        ("kill-switch", "post", "/kill-switch", {"engaged": True, "reason": "x"}, (n,), k, False)
        for n, k in [("engaged", "bool"), ("reason", "string")]
    ],
    *[
        ("rollback", "post", "/rollback", {"revision": 1}, (n,), k, False)
        for n, k in [("revision", "number"), ("reason", "string")]
    ],
    *[
        ("keys", "post", "/keys", {"role": "viewer"}, (n,), "string", False)
        for n in ("role", "name")
    ],
    *[
        ("routers", "post", "/../", {"slug": "another"}, (n,), "string", False)
        for n in ("slug", "name")
    ],
    *[
        ("guardrail", "put", "/guardrail", {"enabled": True}, (n,), k, False)
        for n, k in [
            ("enabled", "bool"),
            ("min_success_rate", "number"),
            ("max_fallback_rate", "number"),
            ("window_minutes", "number"),
            ("min_requests", "number"),
        ]
    ],
]


def wrong_values(kind: str, nullable: bool) -> dict[str, Any]:
    return {
        json_type: probe(json_type, kind)
        for json_type in JSON_TYPES
        if json_type != kind and not (json_type == "null" and nullable)
    }


def with_value(body: dict[str, Any], field: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    return body


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "kind", "nullable"),
    [pytest.param(*spec[1:], id=f"{spec[0]}-{'.'.join(spec[4])}") for spec in FIELDS],
)
def test_wrong_json_type__400_naming_the_field_and_nothing_written(
    request, operator_api, router, method, path, body, field, kind, nullable
):
    client, url = operator_api, BASE + path
    if path == "/../":  # routers are created by users, not by a router's key
        client, url = APIClient(), "/api/v1/routers/"
        client.force_login(request.getfixturevalue("operator_user"))  # hashing a password is slow
    answers = {}
    for json_type, value in wrong_values(kind, nullable).items():
        response = getattr(client, method)(url, with_value(body, field, value), format="json")
        errors = response.json().get("errors", {}) if response.status_code == 400 else {}
        answers[json_type] = (response.status_code, ".".join(field) in errors)

    assert answers == {json_type: (400, True) for json_type in answers}
    router.refresh_from_db()
    assert router.current_revision.number == 1
    assert router.revisions.count() == 1


QUERY_PROBES = ["{}", "[]", "abc", "1.5", "null", "true", "-3", "0"]


@pytest.mark.parametrize("value", QUERY_PROBES)
@pytest.mark.parametrize("name", ["page", "page_size"])
def test_audit_paging_params__not_a_positive_integer__400_naming_it(
    operator_api, router, name, value
):
    response = operator_api.get("/api/v1/audit/", {name: value})

    assert response.status_code == 400
    assert name in response.json()["errors"]


@pytest.mark.parametrize("value", ["{}", "[]", "abc", "1.5", "null", "true"])
@pytest.mark.parametrize("name", ["router", "actor", "action"])
def test_audit_text_filters__any_text__200(operator_api, router, name, value):
    # These filters are text: every JSON type written in a query string is a valid (unmatched)
    # filter, never a 500.
    response = operator_api.get("/api/v1/audit/", {name: value})

    assert response.status_code == 200
    assert response.json()["results"] == []
