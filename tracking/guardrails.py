"""Guardrails: step a routed phase back when the events since it went live look bad."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from controlplane import services
from controlplane.actors import Actor
from controlplane.models import ConfigRevision, Guardrail, Phase, Router
from tracking.models import Event

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
        Guardrail.objects.filter(pk=guardrail.pk).update(last_tripped_at=now)
        return revision
