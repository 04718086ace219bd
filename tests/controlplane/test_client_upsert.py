"""The batched RouterClient upsert: flushes from several workers arrive in any order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controlplane.clients import ClientRecorder
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
