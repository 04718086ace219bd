"""Control-plane tasks: the stale-clients check logs one summary line per run; quiet clients
expire."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from controlplane.models import RouterClient
from controlplane.reference_data import EXPIRE_CLIENTS_SCHEDULE
from controlplane.services import create_router
from controlplane.tasks import detect_stale_clients, expire_router_clients


def test_detect_stale_clients__many_clients__one_summary_line(router, actor, caplog):
    other = create_router(slug="payments", actor=actor)
    quiet = timezone.now() - timedelta(minutes=30)
    RouterClient.objects.bulk_create(
        [RouterClient(router=router, client_id=f"c{i}", last_seen=quiet) for i in range(50)]
        + [RouterClient(router=other, client_id="p1", last_seen=quiet)]
        + [RouterClient(router=other, client_id="fresh", last_seen=timezone.now())]
    )
    with caplog.at_level(logging.WARNING, logger="controlplane.tasks"):
        assert detect_stale_clients(minutes=10) == 51
    lines = [r.getMessage() for r in caplog.records if r.name == "controlplane.tasks"]
    assert len(lines) == 1
    assert lines[0].startswith("51 router clients not seen for 10 minutes, in 2 routers:")
    assert "checkout (50), payments (1)" in lines[0]


def test_detect_stale_clients__none__logs_nothing(router, caplog):
    with caplog.at_level(logging.WARNING, logger="controlplane.tasks"):
        assert detect_stale_clients(minutes=10) == 0
    assert not [r for r in caplog.records if r.name == "controlplane.tasks"]


def test_expire_router_clients__uses_the_retention_setting(router, settings):
    settings.ROUTEPLANE_CLIENT_RETENTION_DAYS = 7
    now = timezone.now()
    RouterClient.objects.bulk_create(
        [
            RouterClient(router=router, client_id="old", last_seen=now - timedelta(days=8)),
            RouterClient(router=router, client_id="recent", last_seen=now - timedelta(days=6)),
        ]
    )
    assert expire_router_clients() == 1
    assert list(router.clients.values_list("client_id", flat=True)) == ["recent"]


def test_expire_router_clients__scheduled_daily_by_beat(db):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name=EXPIRE_CLIENTS_SCHEDULE)
    assert task.task == expire_router_clients.name
    assert task.enabled
    assert (task.crontab.hour, task.crontab.minute) == ("3", "47")
