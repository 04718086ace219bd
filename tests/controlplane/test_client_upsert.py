"""The batched RouterClient upsert (flushes from several workers arrive in any order; a cap of
clients per router) and the expiry of quiet clients."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from controlplane.clients import CAP_WARNING_SECONDS, ClientRecorder, expire_clients
from controlplane.models import RouterClient

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 6, 1, 12, tzinfo=UTC)


def flush_poll(router, *, revision: int, at: datetime, user_agent: str) -> None:
    """One worker's flush of one poll by the same client process."""
    recorder = ClientRecorder()
    recorder.autostart = False
    recorder.record(
        router_id=router.pk, client_id="proc-1", user_agent=user_agent, revision=revision, now=at
    )
    assert recorder.flush() == 1


def test_upsert__late_flush_of_an_older_poll__keeps_the_newer_revision(router):
    flush_poll(router, revision=5, at=T0 + timedelta(seconds=10), user_agent="routeplane-sdk/0.2.0")
    # Another worker flushes a poll it saw earlier, after the newer one was written.
    flush_poll(router, revision=3, at=T0, user_agent="routeplane-sdk/0.1.0")

    client = RouterClient.objects.get(router=router, client_id="proc-1")
    assert (client.revision, client.sdk_version) == (5, "0.2.0")
    assert client.last_seen == T0 + timedelta(seconds=10)


def test_upsert__newer_poll__takes_its_revision(router):
    flush_poll(router, revision=3, at=T0, user_agent="routeplane-sdk/0.1.0")
    flush_poll(router, revision=5, at=T0 + timedelta(seconds=10), user_agent="routeplane-sdk/0.2.0")
    flush_poll(router, revision=6, at=T0 + timedelta(seconds=10), user_agent="routeplane-sdk/0.2.0")

    client = RouterClient.objects.get(router=router, client_id="proc-1")
    # The same instant counts as newer (>=): two polls in one tick, the last flushed wins.
    assert (client.revision, client.sdk_version) == (6, "0.2.0")
    assert client.last_seen == T0 + timedelta(seconds=10)


def record_new_ids(router, ids, *, at: datetime = T0) -> ClientRecorder:
    recorder = ClientRecorder()
    recorder.autostart = False
    for offset, client_id in enumerate(ids):
        recorder.record(
            router_id=router.pk,
            client_id=client_id,
            user_agent="routeplane-sdk/1.0.0",
            revision=1,
            now=at + timedelta(milliseconds=offset),
        )
    return recorder


def test_upsert__new_ids_past_the_cap__not_recorded_known_ones_still_updated(
    router, actor, settings, caplog
):
    from controlplane.services import create_router

    settings.ROUTEPLANE_MAX_CLIENTS_PER_ROUTER = 3
    other = create_router(slug="payments", actor=actor)
    assert record_new_ids(router, ["a", "b"]).flush() == 2

    later = T0 + timedelta(minutes=1)
    recorder = record_new_ids(router, ["a", "c", "d", "e"], at=later)  # a known, 3 new
    recorder.record(router_id=other.pk, client_id="x", user_agent="", revision=1, now=later)
    with caplog.at_level(logging.WARNING, logger="controlplane.clients"):
        assert recorder.flush() == 3  # a updated, c added (the 3rd place), x on its own router

    assert sorted(router.clients.values_list("client_id", flat=True)) == ["a", "b", "c"]
    assert router.clients.get(client_id="a").last_seen == later
    assert list(other.clients.values_list("client_id", flat=True)) == ["x"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "controlplane.clients"]
    assert len(warnings) == 1
    assert f"router {router.pk} has reached its cap" in warnings[0]
    assert "2 new client ids were not recorded" in warnings[0]

    # Known clients keep being updated at the cap; new ones keep being refused.
    latest = T0 + timedelta(minutes=2)
    assert record_new_ids(router, ["b", "f"], at=latest).flush() == 1
    assert router.clients.get(client_id="b").last_seen == latest
    assert router.clients.count() == 3


def test_upsert__cap_counts_the_batch__first_polled_win(router, settings):
    settings.ROUTEPLANE_MAX_CLIENTS_PER_ROUTER = 2
    assert record_new_ids(router, ["late", "early", "middle"][::-1]).flush() == 2
    # record_new_ids stamps them in the order given: middle, early, late.
    assert sorted(router.clients.values_list("client_id", flat=True)) == ["early", "middle"]


def test_warn_refused__one_warning_per_router_per_interval(caplog):
    recorder = ClientRecorder()
    with caplog.at_level(logging.WARNING, logger="controlplane.clients"):
        recorder.warn_refused([(1, 5), (2, 1)], now=1000.0)
        recorder.warn_refused([(1, 7)], now=1000.0 + CAP_WARNING_SECONDS - 1)
        recorder.warn_refused([(1, 2), (2, 3)], now=1000.0 + CAP_WARNING_SECONDS + 1)
    warnings = [r.getMessage() for r in caplog.records if r.name == "controlplane.clients"]
    assert [w.split(" has")[0] for w in warnings] == [
        "router 1",
        "router 2",
        "router 1",
        "router 2",
    ]


def test_expire_clients__deletes_only_clients_unseen_for_the_days(router):
    now = datetime.now(UTC)
    RouterClient.objects.bulk_create(
        [
            RouterClient(router=router, client_id="gone", last_seen=now - timedelta(days=31)),
            RouterClient(router=router, client_id="quiet", last_seen=now - timedelta(days=29)),
            RouterClient(router=router, client_id="live", last_seen=now),
        ]
    )
    assert expire_clients(days=30, now=now) == 1
    assert sorted(router.clients.values_list("client_id", flat=True)) == ["live", "quiet"]
