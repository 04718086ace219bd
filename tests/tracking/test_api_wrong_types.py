"""Events and report parameters given each wrong JSON type: the field is named.

An event with a wrong type is rejected by index with the field named; the batch is still a 200
and its good events are stored.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.controlplane.test_api_wrong_types import JSON_TYPES, probe
from tests.tracking.conftest import make_event, post_events
from tracking.models import Event

pytestmark = pytest.mark.django_db

# (field path, JSON type, null allowed)
EVENT_FIELDS: list[tuple[tuple[Any, ...], str, bool]] = [
    (("event_id",), "string", False),
    (("timestamp",), "string", False),
    (("selected_model",), "string", False),
    (("revision",), "number", True),
    (("domains",), "array", True),
    (("domains", 0), "string", False),
    (("routing_method",), "string", True),
    (("model_tier",), "string", True),
    (("strong_win_rate",), "number", True),
    (("threshold",), "number", True),
    (("prompt_tokens",), "number", True),
    (("completion_tokens",), "number", True),
    (("estimated_cost",), "number", True),
    (("latency_ms",), "number", True),
    (("success",), "bool", True),
    (("fallback_used",), "bool", True),
    (("error",), "string", True),
    (("text_sha256",), "string", True),
    (("text_length",), "number", True),
    (("ab_group",), "string", True),
]


def bad_event(field: tuple[Any, ...], value: Any) -> dict[str, Any]:
    event = make_event(domains=["medical"])
    target = event
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    return copy.deepcopy(event)


@pytest.mark.parametrize(
    ("field", "kind", "nullable"),
    [pytest.param(*spec, id=".".join(map(str, spec[0]))) for spec in EVENT_FIELDS],
)
def test_event_field__wrong_json_type__rejected_by_index_naming_it(
    router_api, router, field, kind, nullable
):
    wrong = [
        probe(json_type, kind)
        for json_type in JSON_TYPES
        if json_type != kind and not (json_type == "null" and nullable)
    ]
    good = make_event()
    response = post_events(router_api, [bad_event(field, value) for value in wrong] + [good])

    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == list(range(len(wrong)))
    assert all(field[0] in r["errors"] for r in body["rejected"]), body["rejected"]
    assert [str(i) for i in Event.objects.values_list("event_id", flat=True)] == [good["event_id"]]


@pytest.mark.parametrize("value", ["{}", "[]", "abc", "1.5", "null", "true", "0", "-1"])
@pytest.mark.parametrize("path", ["/api/v1/reports/savings", "/api/v1/metrics/summary"])
def test_period_days__not_a_day_count__400_naming_it(router_api, router, path, value):
    response = router_api.get(path, {"period_days": value})

    assert response.status_code == 400
    assert "period_days" in response.json()["errors"]
