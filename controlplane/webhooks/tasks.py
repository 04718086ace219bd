"""Webhook Celery tasks: thin, take ids, safe to run twice (the work is in delivery.py)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from controlplane.webhooks.delivery import attempt_delivery, stuck_deliveries


@shared_task(bind=True, name="webhooks.deliver", max_retries=None)
def deliver_webhook(self: Any, delivery_id: int) -> None:
    """One attempt now; on failure Celery runs it again after the exponential backoff."""
    retry_in = attempt_delivery(delivery_id=delivery_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name="webhooks.redeliver_pending")
def redeliver_pending() -> int:
    """Re-queue deliveries left pending (broker down at commit, worker lost); schedule it in
    Celery beat (e.g. every 5 minutes)."""
    ids = stuck_deliveries()
    for delivery_id in ids:
        deliver_webhook.delay(delivery_id)
    return len(ids)
