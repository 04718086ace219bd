"""Reused reads of control-plane data."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from controlplane.models import (
    ApiKey,
    AuditEntry,
    ChangePolicy,
    ChangeRequest,
    ChangeRequestStatus,
    ConfigRevision,
    Router,
    RouterClient,
    ScheduledChange,
    ScheduledStatus,
)

# A client polling within this window counts as connected (the SDK polls far more often).
CONNECTED_WINDOW = timedelta(minutes=2)


def router_list() -> QuerySet[Router]:
    return Router.objects.select_related("current_revision").order_by("slug")


def router_overview_list(*, now: datetime | None = None) -> QuerySet[Router]:
    """router_list, each router annotated with `connected_clients` (seen within
    CONNECTED_WINDOW) and `behind_clients` (connected, on an older revision than the current)."""
    connected = Q(clients__last_seen__gte=(now or timezone.now()) - CONNECTED_WINDOW)
    return router_list().annotate(
        connected_clients=Count("clients", filter=connected),
        behind_clients=Count(
            "clients", filter=connected & Q(clients__revision__lt=F("current_revision__number"))
        ),
    )


def router_get(*, slug: str) -> Router:
    return router_list().get(slug=slug)


def revision_list(*, router: Router) -> QuerySet[ConfigRevision]:
    return router.revisions.prefetch_related("flag_states").order_by("-number")


def revision_get(*, router: Router, number: int) -> ConfigRevision:
    return revision_list(router=router).get(number=number)


def current_revision(*, router: Router) -> ConfigRevision:
    return ConfigRevision.objects.prefetch_related("flag_states").get(pk=router.current_revision_id)


def audit_list(
    *,
    router: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since=None,
    until=None,
) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.select_related("router").order_by("-created_at", "-id")
    if router:
        entries = entries.filter(router__slug=router)
    if actor:
        entries = entries.filter(actor__icontains=actor)
    if action:
        entries = entries.filter(action__startswith=action)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lte=until)
    return entries


def api_key_list(*, router: Router) -> QuerySet[ApiKey]:
    return router.api_keys.order_by("-created_at")


def api_key_for_raw(*, raw_key: str) -> ApiKey | None:
    from controlplane.services import hash_key

    return (
        ApiKey.objects.select_related("router")
        .filter(key_hash=hash_key(raw_key), revoked_at__isnull=True)
        .first()
    )


def client_list(
    *,
    router: Router,
    seen_within: timedelta | None = None,
    limit: int | None = None,
    now: datetime | None = None,
) -> QuerySet[RouterClient]:
    """The router's SDK processes, most recently seen first; optionally only those seen within
    `seen_within` of `now`, and at most `limit` of them."""
    clients = router.clients.order_by("-last_seen")
    if seen_within is not None:
        clients = clients.filter(last_seen__gte=(now or timezone.now()) - seen_within)
    return clients[:limit] if limit is not None else clients


def stale_client_list(*, minutes: int = 10, now: datetime | None = None) -> list[RouterClient]:
    """Router processes last seen between a day and `minutes` ago, oldest first."""
    cutoff = (now or timezone.now()) - timedelta(minutes=minutes)
    return list(
        RouterClient.objects.select_related("router")
        .filter(last_seen__lt=cutoff, last_seen__gte=cutoff - timedelta(days=1))
        .order_by("last_seen")
    )


def change_policy(*, router: Router) -> ChangePolicy:
    """The router's change policy (an unsaved all-off one when none was set)."""
    return ChangePolicy.objects.filter(router=router).first() or ChangePolicy(router=router)


def change_request_list(*, router: Router, pending: bool = False) -> QuerySet[ChangeRequest]:
    requests = ChangeRequest.objects.filter(router=router).select_related(
        "router__current_revision"
    )
    if pending:
        requests = requests.filter(status=ChangeRequestStatus.PENDING)
    return requests.order_by("-requested_at", "-id")


def scheduled_change_list(*, router: Router, recent: int = 5) -> list[ScheduledChange]:
    """Changes not yet run (soonest first), then the `recent` last ones that ran or ended."""
    changes = ScheduledChange.objects.filter(router=router)
    open_ = list(
        changes.filter(
            status__in=[ScheduledStatus.AWAITING_APPROVAL, ScheduledStatus.PENDING]
        ).order_by("run_at", "id")
    )
    done = list(
        changes.exclude(
            status__in=[ScheduledStatus.AWAITING_APPROVAL, ScheduledStatus.PENDING]
        ).order_by("-run_at", "-id")[:recent]
    )
    return open_ + done
