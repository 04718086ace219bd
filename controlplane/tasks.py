"""Control-plane Celery tasks: thin wrappers over selectors and services."""

from __future__ import annotations

import logging
from collections import Counter

from celery import shared_task
from django.conf import settings

from controlplane.clients import expire_clients
from controlplane.experiments import stop_ended_experiments
from controlplane.scheduled_changes import apply_due_changes
from controlplane.selectors import stale_client_list

log = logging.getLogger(__name__)
ROUTERS_NAMED = 10  # the summary names at most this many routers, the most affected first


@shared_task(name="controlplane.tasks.detect_stale_clients")
def detect_stale_clients(minutes: int = 10) -> int:
    """Log one summary line of router processes not seen for `minutes` (alerting reads it);
    one line per run, however many clients went quiet."""
    clients = stale_client_list(minutes=minutes)
    if clients:
        per_router = Counter(client.router.slug for client in clients)
        named = ", ".join(f"{slug} ({n})" for slug, n in per_router.most_common(ROUTERS_NAMED))
        more = len(per_router) - ROUTERS_NAMED
        log.warning(
            "%d router clients not seen for %d minutes, in %d routers: %s%s; oldest seen %s",
            len(clients),
            minutes,
            len(per_router),
            named,
            f" and {more} more" if more > 0 else "",
            clients[0].last_seen.isoformat(),
        )
    return len(clients)


@shared_task(name="controlplane.tasks.apply_scheduled_changes")
def apply_scheduled_changes() -> int:
    """Apply the scheduled changes that are due (exactly once, whoever runs it)."""
    return apply_due_changes()


@shared_task(name="controlplane.tasks.expire_router_clients")
def expire_router_clients(days: int | None = None) -> int:
    """Delete router clients not seen for `days` (ROUTEPLANE_CLIENT_RETENTION_DAYS) days, so
    client ids that stopped polling free their place under the per-router cap."""
    days = days or settings.ROUTEPLANE_CLIENT_RETENTION_DAYS
    deleted = expire_clients(days=days)
    if deleted:
        log.info("deleted %d router clients not seen for %s days", deleted, days)
    return deleted


@shared_task(name="controlplane.tasks.end_experiments")
def end_experiments() -> int:
    """Stop the A/B experiments whose planned end has passed."""
    return stop_ended_experiments()
