"""POST /api/v1/events: idempotent batches, per-item rejections, envelope errors, auth."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from controlplane.services import revoke_api_key
from tests.tracking.conftest import make_event, post_events
from tracking.models import Event

pytestmark = pytest.mark.django_db


def test_post__valid_batch__stored_once_with_counts(router_api, router):
    events = [make_event(prompt_tokens=10, completion_tokens=5) for _ in range(3)]

    response = post_events(router_api, events)

    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert Event.objects.filter(router=router).count() == 3


def test_post__same_batch_twice__counted_once(router_api, router):
    events = [make_event() for _ in range(5)]
    post_events(router_api, events)

    again = post_events(router_api, events)

    assert again.json() == {"accepted": 0, "duplicates": 5, "rejected": []}
    assert Event.objects.filter(router=router).count() == 5


def test_post__duplicate_inside_one_batch__counted_as_duplicate(router_api, router):
    event = make_event()

    response = post_events(router_api, [event, make_event(), dict(event)])

    assert response.json() == {"accepted": 2, "duplicates": 1, "rejected": []}
    assert Event.objects.filter(router=router).count() == 2


def test_post__one_bad_event_in_1000__rejected_by_index_others_stored(router_api, router):
    events = [make_event() for _ in range(1000)]
    events[637]["prompt_tokens"] = -5

    body = post_events(router_api, events).json()

    assert body["accepted"] == 999
    assert body["duplicates"] == 0
    assert body["rejected"] == [
        {"index": 637, "errors": {"prompt_tokens": ["Expected `int` >= 0"]}}
    ]
    assert Event.objects.filter(router=router).count() == 999


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", "not-a-uuid"),
        ("timestamp", "yesterday"),
        ("prompt_tokens", -1),
        ("completion_tokens", 1.5),
        ("estimated_cost", -0.01),
        ("latency_ms", -3),
        ("strong_win_rate", 1.2),
        ("threshold", -0.1),
        ("model_tier", "medium"),
        ("domains", "technical"),
        ("selected_model", ""),
        ("text_sha256", "abc"),
        ("success", "yes"),
    ],
)
def test_post__bad_field__rejected_with_its_name(router_api, field, value):
    response = post_events(router_api, [make_event(**{field: value}), make_event()])

    body = response.json()
    assert response.status_code == 200
    assert body["accepted"] == 1
    assert [item["index"] for item in body["rejected"]] == [0]
    assert list(body["rejected"][0]["errors"]) == [field]


def test_post__missing_required_field__rejected(router_api):
    event = make_event()
    del event["selected_model"]

    body = post_events(router_api, [event]).json()

    assert body["rejected"] == [
        {"index": 0, "errors": {"selected_model": ["This field is required."]}}
    ]


def test_post__far_future_timestamp__rejected(router_api):
    future = datetime.now(UTC) + timedelta(minutes=30)

    body = post_events(router_api, [make_event(timestamp=future)]).json()

    assert body["accepted"] == 0
    assert body["rejected"][0]["errors"] == {"timestamp": ["Is more than 5 minutes in the future."]}


def test_post__offset_beyond_postgres_range__stored_in_utc(router_api):
    # ISO 8601 allows +22:47; PostgreSQL refuses offsets past 15:59 (found by schemathesis: a
    # 500 that dropped the whole batch).
    event = make_event(timestamp="2012-05-14T05:37:33.654617-22:47")

    body = post_events(router_api, [event, make_event()]).json()

    assert (body["accepted"], body["rejected"]) == (2, [])
    stored = Event.objects.get(event_id=event["event_id"]).timestamp
    assert stored == datetime(2012, 5, 15, 4, 24, 33, 654617, tzinfo=UTC)


def test_post__timestamp_before_year_1_in_utc__rejected(router_api):
    body = post_events(router_api, [make_event(timestamp="0001-01-01T00:00:00+01:00")]).json()

    assert body["accepted"] == 0
    assert body["rejected"] == [{"index": 0, "errors": {"timestamp": ["Is out of range."]}}]


def test_post__item_not_an_object__rejected_by_index(router_api):
    body = post_events(router_api, [make_event(), "nope", 3]).json()

    assert body["accepted"] == 1
    assert [item["index"] for item in body["rejected"]] == [1, 2]


def test_post__nulls_and_unknown_fields__accepted_and_text_dropped(router_api, router):
    event = make_event(
        revision=None,
        domains=None,
        success=None,
        fallback_used=None,
        latency_ms=None,
        text="the raw prompt must never be stored",
        mystery_field={"x": 1},
    )

    body = post_events(router_api, [event]).json()

    assert body["accepted"] == 1
    stored = Event.objects.get(router=router, event_id=uuid.UUID(event["event_id"]))
    assert stored.success is True
    assert stored.fallback_used is False
    assert stored.domain == "general"
    values = [str(v) for v in Event.objects.filter(pk=stored.pk).values().get().values()]
    assert not any("raw prompt" in value for value in values)


def test_post__first_domain__is_the_breakdown_domain(router_api, router):
    post_events(router_api, [make_event(domains=["Technical", "legal"])])

    assert Event.objects.get(router=router).domain == "technical"


def test_post__malformed_json__400(router_api):
    response = post_events(router_api, b'{"events": [')

    assert response.status_code == 400
    assert "body" in response.json()["errors"]


@pytest.mark.parametrize("body", [b"[]", b'{"events": {}}', b'{"other": []}', b"3"])
def test_post__not_an_events_object__400(router_api, body):
    response = post_events(router_api, body)

    assert response.status_code == 400
    assert response.json()["errors"]


def test_post__1001_events__413_nothing_stored(router_api, router):
    response = post_events(router_api, [make_event() for _ in range(1001)])

    assert response.status_code == 413
    assert Event.objects.filter(router=router).count() == 0


def test_post__unknown_key__401(anonymous_api):
    anonymous_api.credentials(HTTP_AUTHORIZATION="Bearer rp_not-a-real-key")

    assert post_events(anonymous_api, [make_event()]).status_code == 401


def test_post__revoked_key__401(router_api, router, actor):
    key = router.api_keys.get(role="router")
    revoke_api_key(key=key, actor=actor)

    assert post_events(router_api, [make_event()]).status_code == 401


def test_post__no_key__refused(anonymous_api):
    assert post_events(anonymous_api, [make_event()]).status_code in (401, 403)


def test_post__viewer_key__403(viewer_api):
    assert post_events(viewer_api, [make_event()]).status_code == 403


def test_post__operator_key__accepted(operator_api, router):
    assert post_events(operator_api, [make_event()]).json()["accepted"] == 1


def test_post__tier_missing__inferred_from_the_config(router_api, router):
    post_events(
        router_api,
        [make_event(selected_model="gpt-4-1106-preview"), make_event(selected_model="llama")],
    )

    tiers = set(Event.objects.filter(router=router).values_list("selected_model", "model_tier"))
    assert tiers == {("gpt-4-1106-preview", "strong"), ("llama", "other")}


NUL = "\u0000"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("selected_model", f"gpt-4o{NUL}"),
        ("domains", ["technical", f"le{NUL}gal"]),
        ("routing_method", NUL),
        ("error", f"Timeout{NUL}Error"),
        ("ab_group", f"a{NUL}"),
        ("text_sha256", NUL * 64),
    ],
)
def test_post__nul_in_a_string_field__rejected_by_index_others_stored(
    router_api, router, field, value
):
    # PostgreSQL text cannot hold NUL: before the check, COPY raised and the batch was a 500.
    events = [make_event(), make_event(**{field: value}), make_event()]

    response = post_events(router_api, events)

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [item["index"] for item in body["rejected"]] == [1]
    assert list(body["rejected"][0]["errors"]) == [field]
    assert Event.objects.filter(router=router).count() == 2


def test_post__nul_error__names_the_reason(router_api):
    body = post_events(router_api, [make_event(routing_method=f"x{NUL}")]).json()

    message = "Must not contain the NUL character (\\u0000)."
    assert body["rejected"] == [{"index": 0, "errors": {"routing_method": [message]}}]


def test_post__nul_only_in_an_ignored_field_or_escaped_backslash__accepted(router_api, router):
    # A raw body holding `\u0000` sends every event through the per-event scan; neither of these
    # stores a NUL: `text` is never stored, and "\\u0000" is a backslash then "u0000".
    events = [make_event(text=f"prompt{NUL}"), make_event(error="C:\\u0000")]

    body = post_events(router_api, events).json()

    assert (body["accepted"], body["rejected"]) == (2, [])
    assert Event.objects.get(router=router, error__startswith="C:").error == "C:\\u0000"
