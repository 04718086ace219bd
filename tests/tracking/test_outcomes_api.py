"""POST /api/v1/events/outcomes: one outcome per event, re-priced, per-item rejections, auth."""

from __future__ import annotations

import uuid

import orjson
import pytest

from controlplane.services import create_router, update_config
from tests.tracking.conftest import make_event, post_events
from tracking.models import Event
from tracking.reports import savings_report

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/outcomes"


def post_outcomes(api, outcomes):
    body = outcomes if isinstance(outcomes, bytes) else orjson.dumps({"outcomes": outcomes})
    return api.post(URL, body, content_type="application/json")


@pytest.fixture
def routed(router_api) -> list[dict]:
    """Three weak-model decisions as DomainRouter sends them: no tokens, so unpriced."""
    events = [make_event(selected_model="gpt-3.5-turbo", latency_ms=2.0) for _ in range(3)]
    assert post_events(router_api, events).json()["accepted"] == 3
    return events


def test_outcome__stored_and_repriced_from_its_tokens(router_api, router, routed):
    outcome = {
        "event_id": routed[0]["event_id"],
        "prompt_tokens": 1_000_000,
        "completion_tokens": 1_000_000,
        "latency_ms": 850.5,
        "success": False,
        "error": "upstream 500",
        "quality": 0.25,
    }

    response = post_outcomes(router_api, [outcome])

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    event = Event.objects.get(router=router, event_id=routed[0]["event_id"])
    # Seed prices per 1M tokens: gpt-3.5-turbo 0.5 + 1.5; strong gpt-4-1106-preview 10 + 30.
    assert event.cost == pytest.approx(2.0)
    assert event.baseline_cost == pytest.approx(40.0)
    assert (event.prompt_tokens, event.completion_tokens) == (1_000_000, 1_000_000)
    assert (event.latency_ms, event.success, event.error) == (850.5, False, "upstream 500")
    assert event.quality == 0.25
    assert event.outcome_at is not None
    report = savings_report(router=router)
    assert report["unpriced_requests"] == 2
    assert report["estimated_savings"] == pytest.approx(38.0)


def test_outcome__omitted_fields_keep_the_events_values(router_api, router, routed):
    post_outcomes(router_api, [{"event_id": routed[0]["event_id"], "quality": 1}])

    event = Event.objects.get(router=router, event_id=routed[0]["event_id"])
    assert (event.latency_ms, event.success, event.error, event.quality) == (2.0, True, "", 1.0)
    assert event.cost is None  # still no tokens: still unpriced


def test_outcome__same_again__duplicate_different__rejected(router_api, router, routed):
    first = {"event_id": routed[0]["event_id"], "prompt_tokens": 10, "completion_tokens": 5}
    assert post_outcomes(router_api, [first]).json()["accepted"] == 1

    # The same values (null spelled out, 5 as 5.0 where the schema says float) are the same.
    same = dict(first, quality=None)
    different = dict(first, completion_tokens=6)
    body = post_outcomes(router_api, [same, different]).json()

    assert body == {
        "accepted": 0,
        "duplicates": 1,
        "rejected": [
            {"index": 1, "errors": {"event_id": ["This event already has a different outcome."]}}
        ],
    }
    event = Event.objects.get(router=router, event_id=routed[0]["event_id"])
    assert event.completion_tokens == 5


def test_outcome__twice_in_one_batch__second_is_duplicate_or_conflict(router_api, routed):
    a = {"event_id": routed[0]["event_id"], "latency_ms": 5}
    b = {"event_id": routed[1]["event_id"], "latency_ms": 5}

    body = post_outcomes(router_api, [a, dict(a, latency_ms=5.0), b, dict(b, latency_ms=6)]).json()

    assert body["accepted"] == 2
    assert body["duplicates"] == 1
    assert [item["index"] for item in body["rejected"]] == [3]


def test_outcome__unknown_or_other_routers_event__rejected_by_index(router_api, actor, routed):
    other = create_router(slug="other", name="Other", actor=actor)
    from tracking.ingest import record_events

    foreign = make_event()
    record_events(router_id=other.pk, payload={"events": [foreign]})
    outcomes = [
        {"event_id": str(uuid.uuid4()), "success": True},
        {"event_id": routed[0]["event_id"], "success": True},
        {"event_id": foreign["event_id"], "success": False},
    ]

    body = post_outcomes(router_api, outcomes).json()

    assert body["accepted"] == 1
    assert body["rejected"] == [
        {"index": 0, "errors": {"event_id": ["unknown event_id"]}},
        {"index": 2, "errors": {"event_id": ["unknown event_id"]}},
    ]
    assert Event.objects.get(router=other, event_id=foreign["event_id"]).success is True


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", "not-a-uuid"),
        ("prompt_tokens", -1),
        ("completion_tokens", 1.5),
        ("latency_ms", "fast"),
        ("success", "yes"),
        ("error", 42),
        ("quality", 1.5),
        ("quality", -0.1),
        ("quality", "good"),
    ],
)
def test_outcome__bad_field__rejected_with_its_name_others_stored(router_api, routed, field, value):
    bad = {"event_id": routed[0]["event_id"], "success": True, field: value}
    good = {"event_id": routed[1]["event_id"], "success": True}

    body = post_outcomes(router_api, [bad, good]).json()

    assert body["accepted"] == 1
    assert [item["index"] for item in body["rejected"]] == [0]
    assert list(body["rejected"][0]["errors"]) == [field]


def test_outcome__missing_event_id_or_nothing_reported__rejected(router_api, routed):
    body = post_outcomes(router_api, [{"quality": 0.5}, {"event_id": routed[0]["event_id"]}])

    assert body.json()["accepted"] == 0
    errors = [item["errors"] for item in body.json()["rejected"]]
    assert errors[0] == {"event_id": ["This field is required."]}
    assert list(errors[1]) == ["non_field_errors"]


def test_outcome__nul_in_error__rejected_like_events(router_api, router, routed):
    raw = orjson.dumps(
        {
            "outcomes": [
                {"event_id": routed[0]["event_id"], "success": False, "error": "bad\u0000byte"},
                {"event_id": routed[1]["event_id"], "success": False, "error": "timeout"},
            ]
        }
    )

    body = post_outcomes(router_api, raw).json()

    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 0
    assert list(body["rejected"][0]["errors"]) == ["error"]
    assert Event.objects.get(router=router, event_id=routed[0]["event_id"]).success is True


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        (b"[]", "body", 400),
        (b'{"outcomes": {}}', "outcomes", 400),
        (b'{"events": []}', "outcomes", 400),
        (b"{not json", "body", 400),
        (orjson.dumps({"outcomes": [{"event_id": str(uuid.uuid4())}] * 1001}), "outcomes", 413),
    ],
)
def test_outcome__bad_envelope__error_naming_the_field(router_api, body, field, status):
    response = post_outcomes(router_api, body)

    assert response.status_code == status
    assert list(response.json()["errors"]) == [field]


def test_outcome__baseline_at_the_strong_model_of_the_events_revision(router_api, router, actor):
    update_config(router=router, changes={"strong_model": "gpt-4o"}, actor=actor)  # revision 2
    old, new = make_event(revision=1), make_event()
    post_events(router_api, [old, new])
    tokens = {"prompt_tokens": 1_000_000, "completion_tokens": 0}

    post_outcomes(router_api, [{"event_id": e["event_id"], **tokens} for e in (old, new)])

    baselines = dict(Event.objects.filter(router=router).values_list("event_id", "baseline_cost"))
    assert baselines[uuid.UUID(old["event_id"])] == pytest.approx(10.0)  # gpt-4-1106-preview
    assert baselines[uuid.UUID(new["event_id"])] == pytest.approx(2.5)  # gpt-4o, current


def test_outcome__viewer_key__forbidden_no_key__unauthorized(viewer_api, anonymous_api, routed):
    outcome = [{"event_id": routed[0]["event_id"], "success": True}]

    assert post_outcomes(viewer_api, outcome).status_code == 403
    assert post_outcomes(anonymous_api, outcome).status_code == 401
    assert not Event.objects.filter(outcome_at__isnull=False).exists()


def test_outcome__body_over_the_limit__413(router_api, settings, routed):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = [{"event_id": routed[0]["event_id"], "error": "x" * 2000, "success": False}]

    assert post_outcomes(router_api, big).status_code == 413


def test_outcome__key_over_its_rate__429_nothing_stored(router_api, router, routed, settings):
    from django.core.cache import cache

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "2/min", "login": "10/min"},
    }
    cache.clear()
    codes = [
        post_outcomes(router_api, [{"event_id": e["event_id"], "success": True}]).status_code
        for e in routed
    ]

    assert codes == [200, 200, 429]
    assert Event.objects.filter(router=router, outcome_at__isnull=False).count() == 2
    cache.clear()
