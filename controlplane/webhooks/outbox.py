"""emit(): record an event and its deliveries in the caller's transaction; queue after commit."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from controlplane.actors import Actor
from controlplane.models import ConfigRevision, Router
from controlplane.webhooks.events import EVENT_TYPES
from controlplane.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger(__name__)


def emit(
    *,
    router: Router,
    type: str,
    data: dict[str, Any],
    endpoints: list[WebhookEndpoint] | None = None,
) -> WebhookEvent:
    """Store the event and a pending delivery per enabled endpoint subscribed to `type` (or per
    one of `endpoints`, for a test); Celery gets them once the transaction commits."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    event = WebhookEvent.objects.create(router=router, type=type, data=data)
    if endpoints is None:
        endpoints = [
            endpoint
            for endpoint in WebhookEndpoint.objects.filter(router=router, enabled=True)
            if type in endpoint.event_types
        ]
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=endpoint, event=event) for endpoint in endpoints
    )
    ids = [delivery.pk for delivery in deliveries]
    if ids:
        transaction.on_commit(lambda: queue_deliveries(ids))
    return event


def emit_revision_event(
    *,
    router: Router,
    type: str,
    revision: ConfigRevision,
    actor: Actor,
    reason: str = "",
    **extra: Any,
) -> WebhookEvent:
    """emit() with what every revision event carries: the new revision and who made it."""
    data = {
        "revision": revision.number,
        "phase": revision.phase,
        "phase_domain": revision.phase_domain,
        "kill_switch": revision.kill_switch,
        "actor": actor.label,
        "reason": reason,
        **extra,
    }
    return emit(router=router, type=type, data=data)


def queue_deliveries(delivery_ids: list[int]) -> None:
    """After the commit: hand each delivery to Celery. If the broker is down the change is
    committed all the same (the deliveries stay pending, and `redeliver_pending` picks them up);
    the caller never sees an error for it."""
    from controlplane.webhooks.tasks import deliver_webhook

    for delivery_id in delivery_ids:
        try:
            deliver_webhook.delay(delivery_id)
        except Exception:
            log.warning("could not queue webhook delivery %s; it stays pending", delivery_id)
