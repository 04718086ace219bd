"""Tracking Celery tasks: thin, take ids, safe to run twice at once; the work is in services."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from celery import shared_task

from controlplane.models import Router
from tracking import dynamic_threshold, guardrails, reports, repricing, retention, rollups
from tracking.models import Guardrail


@shared_task(name="tracking.tasks.rollup_events")
def rollup_events() -> int:
    return rollups.rollup_events()


@shared_task(name="tracking.tasks.apply_price_changes")
def apply_price_changes() -> int:
    return repricing.apply_price_changes()


@shared_task(name="tracking.tasks.purge_expired_events")
def purge_expired_events(router_id: int | None = None) -> int:
    ids = [router_id] if router_id else list(Router.objects.values_list("pk", flat=True))
    return sum(retention.purge_expired_events(router_id=pk) for pk in ids)


@shared_task(name="tracking.tasks.store_daily_reports")
def store_daily_reports(day: str | None = None) -> int:
    """Store yesterday's (or `day`'s, ISO date) report for every router."""
    when = date.fromisoformat(day) if day else (datetime.now(UTC) - timedelta(days=1)).date()
    ids = list(Router.objects.values_list("pk", flat=True))
    for pk in ids:
        reports.store_daily_report(router_id=pk, day=when)
    return len(ids)


@shared_task(name="tracking.tasks.check_guardrails")
def check_guardrails() -> int:
    """Check every enabled guardrail; returns how many stepped a router back."""
    tripped = 0
    for guardrail in Guardrail.objects.filter(enabled=True):
        if guardrails.check_guardrail(guardrail=guardrail) is not None:
            tripped += 1
    return tripped


@shared_task(bind=True, name="tracking.tasks.recompute_savings")
def recompute_savings(self: Any, router_id: int) -> dict[str, int]:
    """Re-price a router's events and rebuild its rollups; progress in the result state."""

    def progress(done: int, total: int) -> None:
        self.update_state(state="PROGRESS", meta={"done": done, "total": total})

    changed = repricing.recompute_savings(router_id=router_id, progress=progress)
    return {"changed": changed}


@shared_task(name="tracking.tasks.recalibrate_thresholds")
def recalibrate_thresholds() -> int:
    """One dynamic-threshold run per router with routellm_dynamic_threshold on; returns how
    many published a revision."""
    runs = [
        dynamic_threshold.recalibrate_router(router=router)
        for router in dynamic_threshold.routers_with_dynamic_threshold()
    ]
    return sum(run.outcome == "published" for run in runs)
