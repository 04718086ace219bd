"""Rows a working database needs: the role groups and the control plane's beat schedules.

Created by migrations and again after every `migrate`/`flush` (post_migrate), only if missing.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps

ROLE_GROUPS = ("operator", "viewer")
STALE_CLIENTS_SCHEDULE = "controlplane: stale clients"
SCHEDULED_CHANGES_SCHEDULE = "controlplane: apply scheduled changes"
SCHEDULED_CHANGES_EVERY_SECONDS = 10
EXPIRE_CLIENTS_SCHEDULE = "controlplane: expire clients"
EXPIRE_CLIENTS_CRONTAB = {"minute": "47", "hour": "3"}  # daily, UTC, after tracking's purge
END_EXPERIMENTS_SCHEDULE = "controlplane: end experiments"


def ensure_reference_data(apps: Any = global_apps) -> None:
    Group = apps.get_model("auth", "Group")
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if not PeriodicTask.objects.filter(name=STALE_CLIENTS_SCHEDULE).exists():
        every_5_minutes, _ = IntervalSchedule.objects.get_or_create(every=300, period="seconds")
        PeriodicTask.objects.create(
            name=STALE_CLIENTS_SCHEDULE,
            task="controlplane.tasks.detect_stale_clients",
            interval=every_5_minutes,
        )
    if not PeriodicTask.objects.filter(name=SCHEDULED_CHANGES_SCHEDULE).exists():
        every, _ = IntervalSchedule.objects.get_or_create(
            every=SCHEDULED_CHANGES_EVERY_SECONDS, period="seconds"
        )
        PeriodicTask.objects.create(
            name=SCHEDULED_CHANGES_SCHEDULE,
            task="controlplane.tasks.apply_scheduled_changes",
            interval=every,
        )
    if not PeriodicTask.objects.filter(name=EXPIRE_CLIENTS_SCHEDULE).exists():
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        daily, _ = CrontabSchedule.objects.get_or_create(
            **EXPIRE_CLIENTS_CRONTAB,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        PeriodicTask.objects.create(
            name=EXPIRE_CLIENTS_SCHEDULE,
            task="controlplane.tasks.expire_router_clients",
            crontab=daily,
        )
    if not PeriodicTask.objects.filter(name=END_EXPERIMENTS_SCHEDULE).exists():
        every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
        PeriodicTask.objects.create(
            name=END_EXPERIMENTS_SCHEDULE,
            task="controlplane.tasks.end_experiments",
            interval=every_minute,
        )


def on_post_migrate(sender: Any, apps: Any = global_apps, **kwargs: Any) -> None:
    try:
        apps.get_model("controlplane", "RouterClient")
        apps.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:
        return
    ensure_reference_data(apps)
