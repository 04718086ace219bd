"""Rows a working database needs: shipped prices, the rollup watermark, the beat schedules.

Created by migration 0003 and again after every `migrate`/`flush` (post_migrate, like Django's
content types), only where missing: an operator's edits to prices or schedules are kept.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps

# name -> (task, crontab fields or interval seconds)
SCHEDULES: dict[str, tuple[str, dict[str, Any]]] = {
    "tracking: roll up events": ("tracking.tasks.rollup_events", {"every": 60}),
    "tracking: apply price changes": ("tracking.tasks.apply_price_changes", {"every": 300}),
    "tracking: check guardrails": ("tracking.tasks.check_guardrails", {"every": 60}),
    # tracking.dynamic_threshold.SCHEDULE_NAME
    "tracking: dynamic threshold": ("tracking.tasks.recalibrate_thresholds", {"every": 900}),
    "tracking: retention purge": (
        "tracking.tasks.purge_expired_events",
        {"crontab": {"minute": "17", "hour": "3"}},
    ),
    "tracking: daily savings reports": (
        "tracking.tasks.store_daily_reports",
        {"crontab": {"minute": "10", "hour": "0"}},
    ),
}


def ensure_reference_data(apps: Any = global_apps) -> None:
    from django.utils import timezone

    from routing.prices import SHIPPED_PRICE_FILE, load_price_file

    ModelPrice = apps.get_model("tracking", "ModelPrice")
    if not ModelPrice.objects.exists():
        now = timezone.now()
        for row in load_price_file(SHIPPED_PRICE_FILE):
            ModelPrice.objects.get_or_create(
                model=row.model,
                effective_from=row.effective_from,
                defaults={
                    "input_per_token": row.input_per_token,
                    "output_per_token": row.output_per_token,
                    "source": row.source,
                    "applied_at": now,  # nothing to re-price in a database without prices
                },
            )
    apps.get_model("tracking", "RollupWatermark").objects.get_or_create(id=1)

    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, (task, when) in SCHEDULES.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        defaults: dict[str, Any] = {"task": task, "enabled": True}
        if "every" in when:
            defaults["interval"], _ = IntervalSchedule.objects.get_or_create(
                every=when["every"], period="seconds"
            )
        else:
            defaults["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=when["crontab"]["minute"],
                hour=when["crontab"]["hour"],
                day_of_week="*",
                day_of_month="*",
                month_of_year="*",
                timezone="UTC",
            )
        PeriodicTask.objects.create(name=name, **defaults)


def on_post_migrate(sender: Any, apps: Any = global_apps, **kwargs: Any) -> None:
    # Only once the tables exist (post_migrate also fires for partial migrations).
    try:
        apps.get_model("tracking", "ModelPrice")
        apps.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:
        return
    ensure_reference_data(apps)
