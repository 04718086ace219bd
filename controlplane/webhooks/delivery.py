"""One delivery attempt: POST the signed body, log the answer, decide whether to retry."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from controlplane.webhooks.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
)
from controlplane.webhooks.signing import HEADER, signature_header

USER_AGENT = "routeplane-webhooks/1"
MAX_BACKOFF_SECONDS = 3600.0


def max_attempts() -> int:
    return int(getattr(settings, "ROUTEPLANE_WEBHOOK_MAX_ATTEMPTS", 6))


def backoff_seconds(attempt: int) -> float:
    """Wait after failed attempt `attempt` (1-based): base, 2 x base, 4 x base, … capped."""
    base = float(getattr(settings, "ROUTEPLANE_WEBHOOK_BACKOFF_SECONDS", 30.0))
    return min(MAX_BACKOFF_SECONDS, base * 2 ** (attempt - 1))


def event_body(event: WebhookEvent) -> bytes:
    """The JSON body, the same bytes for every endpoint and attempt."""
    return orjson.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "router": event.router.slug,
            "created_at": event.created_at.isoformat(),
            "data": event.data,
        }
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would turn the POST into a GET elsewhere: the endpoint must answer itself.
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, float, str]:
    """(status code or None, response time in ms, error text)."""
    timeout = float(getattr(settings, "ROUTEPLANE_WEBHOOK_TIMEOUT_SECONDS", 10.0))
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    started = time.perf_counter()
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(65536)
            status, error = response.status, ""
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        status, error = None, f"{exc.__class__.__name__}: {reason}"[:500]
    return status, (time.perf_counter() - started) * 1000.0, error


def attempt_delivery(*, delivery_id: int) -> float | None:
    """Make the next attempt of a pending delivery; the seconds to wait before the next one, or
    None when it is done (delivered, failed for good, or not this call's to make).

    The delivery row stays locked during the POST, so a task run twice never sends twice at
    once; a second run finds it locked (or no longer pending) and returns None.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint", "event__router")
            .filter(pk=delivery_id, state=DeliveryState.PENDING)
            .first()
        )
        if delivery is None:
            return None
        endpoint = delivery.endpoint
        number = delivery.attempts + 1
        body = event_body(delivery.event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            HEADER: signature_header(endpoint.secret, body),
            "X-Routeplane-Event": delivery.event.type,
            "X-Routeplane-Delivery": str(delivery.pk),
        }
        status, response_ms, error = post(endpoint.url, body, headers)
        succeeded = status is not None and 200 <= status < 300
        WebhookAttempt.objects.create(
            delivery=delivery,
            endpoint=endpoint,
            number=number,
            status_code=status,
            response_ms=response_ms,
            error=error,
            succeeded=succeeded,
        )
        delivery.attempts = number
        delivery.updated_at = timezone.now()
        retry_in: float | None = None
        if succeeded:
            delivery.state = DeliveryState.DELIVERED
        elif number >= max_attempts():
            delivery.state = DeliveryState.FAILED
        else:
            retry_in = backoff_seconds(number)
            delivery.next_attempt_at = delivery.updated_at + timedelta(seconds=retry_in)
        delivery.save(update_fields=["attempts", "state", "updated_at", "next_attempt_at"])
        return retry_in


def stuck_deliveries(*, overdue: timedelta = timedelta(minutes=5)) -> list[int]:
    """Pending deliveries whose next attempt is long overdue (the broker was down when they
    were queued, or a worker died): their ids, for redeliver_pending."""
    cutoff = timezone.now() - overdue
    return list(
        WebhookDelivery.objects.filter(
            state=DeliveryState.PENDING, next_attempt_at__lt=cutoff
        ).values_list("pk", flat=True)[:1000]
    )
