"""Webhook endpoints, the events emitted to them, and the delivery log."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from controlplane.models import Router


class WebhookEndpoint(models.Model):
    """A URL a router's events are POSTed to, signed with `secret`.

    The secret is stored as is: signing needs it (a hash could not sign). The API and the
    dashboard show it once, when the endpoint is created; after that only its prefix.
    """

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=100)
    event_types = models.JSONField(default=list)  # subscribed types (webhooks.events)
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["router", "id"]

    def __str__(self) -> str:
        return f"{self.router.slug} -> {self.url}"

    @property
    def secret_prefix(self) -> str:
        return self.secret[:10]


class WebhookEvent(models.Model):
    """One event, emitted in the transaction of the change it reports (kept even when no
    endpoint subscribes: it is the router's event log)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="webhook_events")
    type = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["router", "-created_at"], name="webhook_event_router")]


class DeliveryState(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt failed


class WebhookDelivery(models.Model):
    """An event on its way to one endpoint; `attempts` counts the POSTs made so far."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="one_delivery_per_event")
        ]


class WebhookAttempt(models.Model):
    """The delivery log: one row per POST, with its answer or its error."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.FloatField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    succeeded = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["endpoint", "-created_at"], name="webhook_attempt_recent")]
