"""The shared event schema's SDK helpers (routing.events): event ids and batch validation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from routing.events import new_event_id, validate_event, validate_events


def event(**fields) -> dict:
    return {
        "event_id": new_event_id(),
        "timestamp": datetime.now(UTC),
        "selected_model": "gpt-4o",
        "domains": ["legal"],
    } | fields


def test_new_event_id__a_random_uuid4_in_its_canonical_form():
    ids = {new_event_id() for _ in range(1000)}

    assert len(ids) == 1000
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == event_id


def test_validate_events__all_valid__same_as_one_by_one():
    now = datetime.now(UTC)
    items = [event(), event(strong_win_rate=0.5), event(error="boom")]

    results = validate_events(items, now)

    assert [errors for _, errors in results] == [{}, {}, {}]
    assert [valid for valid, _ in results] == [validate_event(i, now)[0] for i in items]


def test_validate_events__invalid_or_nul__refused_per_item_others_kept():
    now = datetime.now(UTC)
    items = [event(), event(estimated_cost=-1.0), event(domains=["le\x00gal"]), "not an object"]

    results = validate_events(items, now)

    assert results[0][0] is not None
    assert set(results[1][1]) == {"estimated_cost"}
    assert set(results[2][1]) == {"domains"}
    assert set(results[3][1]) == {"non_field_errors"}


def test_validate_events__nul_in_a_valid_batch__found_by_the_batch_scan():
    now = datetime.now(UTC)
    items = [event(), event(error="bad\x00byte"), event()]

    results = validate_events(items, now)

    assert [set(errors) for _, errors in results] == [set(), {"error"}, set()]
