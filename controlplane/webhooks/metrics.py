"""Webhook deliveries for /metrics, read from the delivery log (the Celery workers that make
the attempts are other processes, maybe other machines: the database sees them all)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from controlplane.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery


class DeliveryCollector:
    def collect(self) -> Iterator[Metric]:
        attempts = CounterMetricFamily(
            "routeplane_webhook_delivery_attempts",
            "Webhook POSTs made, by router and outcome (delivered: a 2xx answer).",
            labels=["router", "outcome"],
        )
        rows = (
            WebhookAttempt.objects.order_by()
            .values("endpoint__router__slug", "succeeded")
            .annotate(n=Count("id"))
        )
        for row in rows:
            outcome = "delivered" if row["succeeded"] else "failed"
            attempts.add_metric([row["endpoint__router__slug"], outcome], row["n"])
        yield attempts
        deliveries = GaugeMetricFamily(
            "routeplane_webhook_deliveries",
            "Webhook deliveries by state (pending: not yet delivered and still being retried).",
            labels=["state"],
        )
        counts = dict(
            WebhookDelivery.objects.order_by()
            .values("state")
            .annotate(n=Count("id"))
            .values_list("state", "n")
        )
        for state in DeliveryState.values:
            deliveries.add_metric([state], counts.get(state, 0))
        yield deliveries


delivery_collector = DeliveryCollector()
