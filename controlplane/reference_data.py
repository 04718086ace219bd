"""Rows a working database needs: the role groups and the guardrail schedule.

Created by migrations and again after every `migrate`/`flush` (post_migrate), only if missing.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps

ROLE_GROUPS = ("operator", "viewer")
GUARDRAIL_SCHEDULE = "controlplane: check guardrails"


def ensure_reference_data(apps: Any = global_apps) -> None:
    Group = apps.get_model("auth", "Group")
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if not PeriodicTask.objects.filter(name=GUARDRAIL_SCHEDULE).exists():
        every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
        PeriodicTask.objects.create(
            name=GUARDRAIL_SCHEDULE,
            task="controlplane.tasks.check_guardrails",
            interval=every_minute,
        )


def on_post_migrate(sender: Any, apps: Any = global_apps, **kwargs: Any) -> None:
    try:
        apps.get_model("controlplane", "Guardrail")
        apps.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:
        return
    ensure_reference_data(apps)
