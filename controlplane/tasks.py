"""Control-plane Celery tasks: thin wrappers over selectors and services."""

from __future__ import annotations

import logging

from celery import shared_task

from controlplane.scheduled_changes import apply_due_changes
from controlplane.selectors import stale_client_list

log = logging.getLogger(__name__)


@shared_task(name="controlplane.tasks.detect_stale_clients")
def detect_stale_clients(minutes: int = 10) -> int:
    """Log router processes not seen for `minutes`, so alerting can pick them up."""
    clients = stale_client_list(minutes=minutes)
    for client in clients:
        log.warning(
            "router %s client %s not seen since %s",
            client.router.slug,
            client.client_id,
            client.last_seen.isoformat(),
        )
    return len(clients)


@shared_task(name="controlplane.tasks.apply_scheduled_changes")
def apply_scheduled_changes() -> int:
    """Apply the scheduled changes that are due (exactly once, whoever runs it)."""
    return apply_due_changes()
