"""Guardrails: settings per router, and the check that steps a routed phase back when the events
since it went live look bad (run every minute by tracking.tasks.check_guardrails)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from controlplane import services
from controlplane.actors import Actor
from controlplane.models import ConfigRevision, Phase, Router
from controlplane.webhooks.events import GUARDRAIL_TRIPPED
from controlplane.webhooks.outbox import emit
from tracking.models import Event, Guardrail

ROUTED_PHASES = (Phase.SINGLE_DOMAIN, Phase.FULL)


@dataclass(frozen=True)
class WindowStats:
    requests: int
    successes: int
    fallbacks: int

    @property
    def success_rate(self) -> float:
        return self.successes / self.requests if self.requests else 1.0

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.requests if self.requests else 0.0


def window_stats(*, router: Router, since: datetime) -> WindowStats:
    counts = Event.objects.filter(router=router, timestamp__gte=since).aggregate(
        requests=Count("event_id"),
        successes=Count("event_id", filter=Q(success=True)),
        fallbacks=Count("event_id", filter=Q(fallback_used=True)),
    )
    return WindowStats(counts["requests"], counts["successes"], counts["fallbacks"])


def check_guardrail(*, guardrail: Guardrail, now: datetime | None = None) -> ConfigRevision | None:
    """Step back once if the current routed revision breaks the guardrail; else None."""
    now = now or timezone.now()
    with transaction.atomic():
        # Under the router's lock, so two checks running at once cannot both step back.
        router = (
            Router.objects.select_for_update(of=("self",))
            .select_related("current_revision")
            .get(pk=guardrail.router_id)
        )
        guardrail = Guardrail.objects.get(pk=guardrail.pk)
        current = router.current_revision
        if not guardrail.enabled or current.kill_switch or current.phase not in ROUTED_PHASES:
            return None
        since = max(now - timedelta(minutes=guardrail.window_minutes), current.created_at)
        stats = window_stats(router=router, since=since)
        if stats.requests < guardrail.min_requests:
            return None
        broken = []
        if stats.success_rate < guardrail.min_success_rate:
            broken.append(
                f"success rate {stats.success_rate:.1%} < {guardrail.min_success_rate:.1%}"
            )
        if stats.fallback_rate > guardrail.max_fallback_rate:
            broken.append(
                f"fallback rate {stats.fallback_rate:.1%} > {guardrail.max_fallback_rate:.1%}"
            )
        if not broken:
            return None
        reason = (
            f"guardrail: {'; '.join(broken)} over {stats.requests} events since "
            f"{since:%Y-%m-%d %H:%M} UTC"
        )
        revision = services.step_back(router=router, actor=Actor.system("guardrail"), reason=reason)
        Guardrail.objects.filter(pk=guardrail.pk).update(
            last_tripped_at=now,
            tripped_revision=revision.number,
            tripped_success_rate=stats.success_rate,
            tripped_fallback_rate=stats.fallback_rate,
            tripped_requests=stats.requests,
            tripped_since=since,
            tripped_reason=reason,
        )
        emit(  # webhook
            router=router,
            type=GUARDRAIL_TRIPPED,
            data={"revision": revision.number, "phase": revision.phase, "reason": reason},
        )
        return revision


GUARDRAIL_FIELDS = (
    "enabled",
    "min_success_rate",
    "max_fallback_rate",
    "window_minutes",
    "min_requests",
)


def tripped_guardrail(*, router: Router) -> Guardrail | None:
    """The router's guardrail while its last trip's step-back is still the current revision."""
    guardrail = Guardrail.objects.filter(router=router, last_tripped_at__isnull=False).first()
    if guardrail is None or guardrail.tripped_revision is None:
        return None
    current = router.current_revision.number if router.current_revision_id else None
    return guardrail if guardrail.tripped_revision == current else None


def guardrail_for(*, router: Router) -> Guardrail:
    """The router's guardrail settings; the defaults (unsaved) when none were ever set."""
    return Guardrail.objects.filter(router=router).first() or Guardrail(router=router)


@transaction.atomic
def set_guardrail(*, router: Router, actor: Actor, **values: Any) -> Guardrail:
    """Change a router's guardrail settings (audited; not part of the routing revision)."""
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        if name not in GUARDRAIL_FIELDS:
            errors[name] = ["unknown guardrail field"]
        elif name == "enabled" and not isinstance(value, bool):
            errors[name] = ["must be a boolean"]
        elif name in ("min_success_rate", "max_fallback_rate") and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
        ):
            errors[name] = ["must be a number between 0 and 1"]
        elif name in ("window_minutes", "min_requests") and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            errors[name] = ["must be an integer >= 1"]
    if errors:
        raise ValidationError(errors)
    guardrail, _ = Guardrail.objects.select_for_update().get_or_create(router=router)
    before = {name: getattr(guardrail, name) for name in GUARDRAIL_FIELDS}
    for name, value in values.items():
        setattr(guardrail, name, value)
    guardrail.save(update_fields=list(values) or None)
    after = {name: getattr(guardrail, name) for name in GUARDRAIL_FIELDS}
    services.record_audit(
        actor=actor,
        action="guardrail.set",
        router=router,
        diff={
            f"guardrail.{k}": {"before": before[k], "after": after[k]}
            for k in GUARDRAIL_FIELDS
            if before[k] != after[k]
        },
    )
    return guardrail
