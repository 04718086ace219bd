"""Webhook reads: a router's endpoints and the delivery log."""

from __future__ import annotations

from django.db.models import QuerySet

from controlplane.models import Router
from controlplane.webhooks.models import WebhookAttempt, WebhookEndpoint


def endpoint_list(*, router: Router) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(router=router).order_by("id")


def attempt_list(*, endpoint: WebhookEndpoint, limit: int = 20) -> list[WebhookAttempt]:
    """The newest attempts first, each with its event (type, id)."""
    return list(
        WebhookAttempt.objects.filter(endpoint=endpoint)
        .select_related("delivery__event")
        .order_by("-created_at", "-id")[:limit]
    )
