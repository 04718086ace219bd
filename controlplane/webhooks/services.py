"""Webhook endpoint writes (audited) and the test send."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from controlplane.actors import Actor
from controlplane.models import Router
from controlplane.services import record_audit
from controlplane.webhooks import outbox
from controlplane.webhooks.events import EVENT_TYPES, WEBHOOK_TEST
from controlplane.webhooks.models import WebhookEndpoint, WebhookEvent

SECRET_PREFIX = "whsec_"
# A test is sent on request only; an endpoint subscribes to the events that happen.
SUBSCRIBABLE = tuple(t for t in EVENT_TYPES if t != WEBHOOK_TEST)
_url = URLValidator(schemes=["http", "https"])


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if name == "url":
            try:
                if not isinstance(value, str) or len(value) > 2000:
                    raise ValidationError("bad")
                _url(value)
                clean[name] = value
            except ValidationError:
                errors[name] = ["an http:// or https:// URL of at most 2000 characters"]
        elif name == "event_types":
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                errors[name] = ["a list of event types"]
                continue
            unknown = sorted(set(value) - set(SUBSCRIBABLE))
            if unknown:
                errors[name] = [
                    f"unknown event types {', '.join(unknown)} (known: {', '.join(SUBSCRIBABLE)})"
                ]
            elif not value:
                errors[name] = ["subscribe to at least one event type"]
            else:
                clean[name] = [t for t in SUBSCRIBABLE if t in value]  # known order, no repeats
        elif name == "enabled":
            if not isinstance(value, bool):
                errors[name] = ["must be a boolean"]
            else:
                clean[name] = value
        elif name == "description":
            if not isinstance(value, str) or len(value) > 200:
                errors[name] = ["a text of at most 200 characters"]
            else:
                clean[name] = value
        else:
            errors[name] = ["unknown field"]
    if errors:
        raise ValidationError(errors)
    return clean


def _audit_view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
        "description": endpoint.description,
    }


@transaction.atomic
def create_endpoint(
    *,
    router: Router,
    url: str,
    actor: Actor,
    event_types: list[str] | None = None,
    enabled: bool = True,
    description: str = "",
) -> WebhookEndpoint:
    """A new endpoint with a generated signing secret (subscribed to every event type unless
    `event_types` says otherwise). The caller shows the secret once."""
    values = _clean(
        {
            "url": url,
            "event_types": list(SUBSCRIBABLE) if event_types is None else event_types,
            "enabled": enabled,
            "description": description,
        }
    )
    endpoint = WebhookEndpoint.objects.create(
        router=router,
        secret=SECRET_PREFIX + secrets.token_urlsafe(32),
        created_by=actor.label,
        **values,
    )
    record_audit(actor=actor, action="webhook.create", router=router, diff=_audit_view(endpoint))
    return endpoint


@transaction.atomic
def update_endpoint(*, endpoint: WebhookEndpoint, actor: Actor, **changes: Any) -> WebhookEndpoint:
    values = _clean(changes)
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = _audit_view(endpoint)
    for name, value in values.items():
        setattr(endpoint, name, value)
    endpoint.save(update_fields=list(values) or None)
    after = _audit_view(endpoint)
    diff = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
    if diff:
        diff = {"id": endpoint.pk, **diff}
        record_audit(actor=actor, action="webhook.update", router=endpoint.router, diff=diff)
    return endpoint


@transaction.atomic
def delete_endpoint(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    record_audit(
        actor=actor, action="webhook.delete", router=endpoint.router, diff=_audit_view(endpoint)
    )
    endpoint.delete()


@transaction.atomic
def send_test(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEvent:
    """A webhook.test event delivered to this endpoint only (enabled or not), via Celery."""
    return outbox.emit(
        router=endpoint.router,
        type=WEBHOOK_TEST,
        data={"endpoint": endpoint.pk, "actor": actor.label, "message": "Routeplane test event"},
        endpoints=[endpoint],
    )
