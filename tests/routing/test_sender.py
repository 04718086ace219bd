"""Delivery to the control plane (routing.sender): spool per URL + key, replay, auth refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from routing import CostTracker
from tests.routing.fakeplane import FakePlane

KEY_A, KEY_B = "rp_key-of-router-a", "rp_key-of-router-b"


@pytest.fixture
def plane() -> Iterator[FakePlane]:
    plane = FakePlane()
    yield plane
    plane.stop()


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def track(tracker: CostTracker, count: int) -> list[str]:
    return [
        tracker.track_routing_decision(f"prompt {i}", ["technical"], "routellm", "gpt-4o", 0.001)
        for i in range(count)
    ]


def spool_down(plane: FakePlane, key: str, spool_root, count: int) -> tuple[CostTracker, list]:
    """Events tracked while the control plane at plane.url is down: all spooled."""
    plane.post_status = 503
    tracker = CostTracker(
        url=plane.url, api_key=key, spool_dir=spool_root, max_send_attempts=1, batch_size=10
    )
    ids = track(tracker, count)
    tracker.close(timeout=2)
    assert tracker.spilled == count and tracker.sent == 0
    plane.post_status = 200
    return tracker, ids


def test_spool__down_then_up__replays_every_event_once(plane, tmp_path):
    down, ids = spool_down(plane, KEY_A, tmp_path, 25)
    assert list(down.spool_dir.glob("batch-*.json"))

    # The next tracker process for this control plane and key finds the spool and replays it.
    up = CostTracker(url=plane.url, api_key=KEY_A, spool_dir=tmp_path)
    ids += track(up, 1)
    wait_for(lambda: set(plane.events) == set(ids))
    wait_for(lambda: not list(up.spool_dir.glob("batch-*")))
    up.close()
    assert len(plane.posted("events")) == 26  # each once


def test_spool__per_url_and_key__replay_never_sends_another_routers_events(plane, tmp_path):
    a, a_ids = spool_down(plane, KEY_A, tmp_path, 12)

    b = CostTracker(url=plane.url, api_key=KEY_B, spool_dir=tmp_path)
    b_ids = track(b, 3)
    assert b.flush(timeout=10) is True
    assert b.replay_spool() == 0
    b.close()

    assert b.spool_dir != a.spool_dir
    assert {e["event_id"] for e in plane.posted("events", key=KEY_B)} == set(b_ids)
    assert plane.posted("events", key=KEY_A) == []
    # Router A's events wait for router A's key, and go out with it.
    assert list(a.spool_dir.glob("batch-*.json"))
    again = CostTracker(url=plane.url, api_key=KEY_A, spool_dir=tmp_path)
    assert again.replay_spool() == 12
    assert {e["event_id"] for e in plane.posted("events", key=KEY_A)} == set(a_ids)
    again.close()


def test_spool__another_url_same_key__separate_spool(plane, tmp_path):
    here = CostTracker(url=plane.url, api_key=KEY_A, spool_dir=tmp_path)
    elsewhere = CostTracker(url="http://127.0.0.1:9/", api_key=KEY_A, spool_dir=tmp_path)

    assert here.spool_dir != elsewhere.spool_dir
    assert KEY_A not in str(here.spool_dir)  # named by a hash: the key is not on disk


@pytest.mark.parametrize("status", [401, 403])
def test_replay__key_refused__spooled_files_kept(plane, tmp_path, status):
    a, ids = spool_down(plane, KEY_A, tmp_path, 15)
    files = sorted(a.spool_dir.glob("batch-*.json"))
    plane.post_status = status

    replaying = CostTracker(url=plane.url, api_key=KEY_A, spool_dir=tmp_path)
    assert replaying.replay_spool() == 0

    assert sorted(a.spool_dir.glob("batch-*.json")) == files
    assert replaying.dropped == 0
    # Once the key is accepted again, the kept events go out.
    plane.post_status = 200
    assert replaying.replay_spool() == 15
    assert set(plane.events) == set(ids)
    assert not list(a.spool_dir.glob("batch-*"))
    replaying.close()


def test_send__key_refused__live_batch_spooled_not_dropped(plane, tmp_path):
    plane.post_status = 403
    tracker = CostTracker(url=plane.url, api_key=KEY_A, spool_dir=tmp_path)
    track(tracker, 4)

    assert tracker.flush(timeout=10) is True
    assert tracker.dropped == 0 and tracker.spilled == 4
    tracker.close()


def test_send__invalid_batch__dropped_and_counted(plane, tmp_path):
    plane.post_status = 400
    tracker = CostTracker(url=plane.url, api_key=KEY_A, spool_dir=tmp_path)
    track(tracker, 4)

    assert tracker.flush(timeout=10) is True
    assert tracker.dropped == 4 and tracker.spilled == 0
    assert not list(tracker.spool_dir.glob("batch-*"))
    tracker.close()


def test_send__events_carry_schema_fields_only_with_iso_timestamps(plane, tmp_path):
    tracker = CostTracker(url=plane.url, api_key=KEY_A, spool_dir=tmp_path)
    event_id = tracker.track_routing_decision(
        "a private prompt", ["legal"], "routellm", "gpt-4o", None, ab_group="b", not_a_field=1
    )

    assert tracker.flush(timeout=10) is True
    (item,) = plane.posted("events")
    assert item["event_id"] == event_id
    assert datetime.fromisoformat(item["timestamp"]).tzinfo is not None
    assert item["ab_group"] == "b" and item["model_tier"] == "other"
    assert "not_a_field" not in item and "private" not in str(item)
    tracker.close()


def test_send__batch_that_cannot_be_sent__dropped_thread_keeps_sending(plane, tmp_path):
    tracker = CostTracker(url=plane.url, api_key=KEY_A, spool_dir=tmp_path, batch_size=10)
    prepare = tracker.sender.prepare_events
    calls = []

    def broken_once(batch):
        calls.append(len(batch))
        if len(calls) == 1:  # e.g. a value JSON cannot hold
            raise TypeError("Type is not JSON serializable: numpy.float64")
        return prepare(batch)

    tracker.sender.prepare_events = broken_once
    lost = track(tracker, 3)
    assert tracker.flush(timeout=10) is True
    kept = track(tracker, 4)
    assert tracker.flush(timeout=10) is True
    wait_for(lambda: set(plane.events) == set(kept))
    assert not set(lost) & set(plane.events)
    assert tracker.dropped == 3
    tracker.close()
