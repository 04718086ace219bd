"""Celery tasks: thin, take ids, safe to run twice at once; the work is in tracking.services."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from celery import shared_task

from controlplane.models import Router
from tracking import services


@shared_task(name="tracking.tasks.rollup_events")
def rollup_events() -> int:
    return services.rollup_events()


@shared_task(name="tracking.tasks.apply_price_changes")
def apply_price_changes() -> int:
    return services.apply_price_changes()


@shared_task(name="tracking.tasks.purge_expired_events")
def purge_expired_events(router_id: int | None = None) -> int:
    ids = [router_id] if router_id else list(Router.objects.values_list("pk", flat=True))
    return sum(services.purge_expired_events(router_id=pk) for pk in ids)


@shared_task(name="tracking.tasks.store_daily_reports")
def store_daily_reports(day: str | None = None) -> int:
    """Store yesterday's (or `day`'s, ISO date) report for every router."""
    when = date.fromisoformat(day) if day else (datetime.now(UTC) - timedelta(days=1)).date()
    ids = list(Router.objects.values_list("pk", flat=True))
    for pk in ids:
        services.store_daily_report(router_id=pk, day=when)
    return len(ids)


@shared_task(name="tracking.tasks.detect_stale_clients")
def detect_stale_clients(minutes: int = 10) -> int:
    return len(services.stale_clients(minutes=minutes))


@shared_task(bind=True, name="tracking.tasks.recompute_savings")
def recompute_savings(self: Any, router_id: int) -> dict[str, int]:
    """Re-price a router's events and rebuild its rollups; progress in the result state."""

    def progress(done: int, total: int) -> None:
        self.update_state(state="PROGRESS", meta={"done": done, "total": total})

    changed = services.recompute_savings(router_id=router_id, progress=progress)
    return {"changed": changed}
