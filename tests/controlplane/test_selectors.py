"""Reused reads of control-plane data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane import selectors
from controlplane.models import RouterClient

pytestmark = pytest.mark.django_db


def test_client_list__window_and_limit__newest_seen_first(router):
    now = timezone.now()
    for minutes in (5, 1, 3, 60 * 25):
        RouterClient.objects.create(
            router=router, client_id=f"host:{minutes}", last_seen=now - timedelta(minutes=minutes)
        )
    every = selectors.client_list(router=router)
    assert [c.client_id for c in every] == ["host:1", "host:3", "host:5", "host:1500"]
    recent = selectors.client_list(router=router, seen_within=timedelta(hours=24), now=now)
    assert [c.client_id for c in recent] == ["host:1", "host:3", "host:5"]
    capped = selectors.client_list(router=router, seen_within=timedelta(hours=24), limit=2, now=now)
    assert [c.client_id for c in capped] == ["host:1", "host:3"]


def test_router_overview_list__counts_connected_and_behind_clients(router, actor):
    from controlplane import services

    services.set_phase(router=router, phase="monitoring", actor=actor)
    now = timezone.now()
    RouterClient.objects.create(router=router, client_id="current", revision=2, last_seen=now)
    RouterClient.objects.create(router=router, client_id="behind", revision=1, last_seen=now)
    RouterClient.objects.create(
        router=router, client_id="gone", revision=1, last_seen=now - timedelta(minutes=10)
    )
    (row,) = selectors.router_overview_list(now=now)
    assert (row.connected_clients, row.behind_clients) == (2, 1)
