"""Change requests: the policy per router, filing a held write, approving or rejecting it.

A request keeps the exact state the held write would have published on its base revision.
Approval publishes that state only while the base is still current: the router may have moved
on since, and a change approved against an older state must be made again, never applied
blindly. The requester cannot approve their own request.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from controlplane.actors import Actor
from controlplane.approvals import ApprovalRequired, approved_change
from controlplane.models import (
    ChangePolicy,
    ChangeRequest,
    ChangeRequestStatus,
    ConfigRevision,
    Router,
)
from controlplane.services import StaleRevision, locked_router, publish_revision, record_audit
from controlplane.snapshot import Snapshot
from controlplane.webhooks import events as webhook_events
from controlplane.webhooks.outbox import emit

POLICY_FIELDS = (
    "approve_full_phase",
    "approve_kill_switch_release",
    "approve_threshold_change_above",
)


@transaction.atomic
def set_change_policy(*, router: Router, actor: Actor, **values: Any) -> ChangePolicy:
    """Change which writes of a router need approval (audited)."""
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        if name not in POLICY_FIELDS:
            errors[name] = ["unknown policy field"]
        elif name.startswith("approve_") and name != "approve_threshold_change_above":
            if not isinstance(value, bool):
                errors[name] = ["must be a boolean"]
        elif value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
        ):
            errors[name] = ["must be null or a number between 0 and 1"]
    if errors:
        raise ValidationError(errors)
    router = Router.objects.select_for_update().get(pk=router.pk)
    policy, _ = ChangePolicy.objects.get_or_create(router=router)
    before = {name: getattr(policy, name) for name in POLICY_FIELDS}
    for name, value in values.items():
        setattr(policy, name, value)
    policy.save()
    after = {name: getattr(policy, name) for name in POLICY_FIELDS}
    record_audit(
        actor=actor,
        action="change_policy.set",
        router=router,
        diff={
            f"change_policy.{k}": {"before": before[k], "after": after[k]}
            for k in POLICY_FIELDS
            if before[k] != after[k]
        },
    )
    return policy


@transaction.atomic
def file_change_request(*, held: ApprovalRequired) -> ChangeRequest:
    """File a write the policy held (the caller's transaction for it was rolled back)."""
    request = ChangeRequest.objects.create(
        router=held.router,
        base_revision=held.base_revision,
        action=held.action,
        snapshot=held.after.as_dict(),
        diff=held.before.diff(held.after),
        reasons=held.reasons,
        reason=held.reason,
        requested_by=held.actor.label,
    )
    record_audit(
        actor=held.actor,
        action="change_request.create",
        router=held.router,
        diff={"change_request": request.pk, "action": held.action, **request.diff},
        reason="; ".join(held.reasons),
    )
    emit(router=held.router, type=webhook_events.CHANGE_REQUEST_CREATED, data=_event_data(request))
    return request


def _event_data(request: ChangeRequest) -> dict[str, Any]:
    return {
        "change_request": request.pk,
        "action": request.action,
        "status": request.status,
        "base_revision": request.base_revision,
        "diff": request.diff,
        "reasons": request.reasons,
        "requested_by": request.requested_by,
        "decided_by": request.decided_by,
        "applied_revision": request.applied_revision,
    }


def _locked_pending(change_request: ChangeRequest, actor: Actor) -> ChangeRequest:
    request = ChangeRequest.objects.select_for_update().get(pk=change_request.pk)
    if request.status != ChangeRequestStatus.PENDING:
        raise ValidationError({"status": [f"this change request is {request.status} already"]})
    if request.requested_by == actor.label:
        raise PermissionDenied("you cannot approve or reject your own change request")
    return request


@transaction.atomic
def approve_change_request(
    *, change_request: ChangeRequest, actor: Actor, reason: str = ""
) -> tuple[ChangeRequest, ConfigRevision]:
    """Publish the request's state as a new revision, if its base revision is still current."""
    router, current = locked_router(change_request.router)
    request = _locked_pending(change_request, actor)
    if current.number != request.base_revision:
        # Nothing written: the operator makes the change again from the current state.
        raise StaleRevision(current.number, request.base_revision)
    with approved_change():
        revision = publish_revision(
            router=router,
            snapshot=Snapshot(**request.snapshot),
            actor=Actor(request.requested_by),
            action=request.action,
            before=Snapshot.of(current),
            reason=request.reason,
        )
    request.status = ChangeRequestStatus.APPROVED
    request.decided_by = actor.label
    request.decided_at = timezone.now()
    request.decision_reason = reason
    request.applied_revision = revision.number
    request.save()
    record_audit(
        actor=actor,
        action="change_request.approve",
        router=router,
        revision_number=revision.number,
        diff={"change_request": request.pk, "requested_by": request.requested_by},
        reason=reason,
    )
    emit(router=router, type=webhook_events.CHANGE_REQUEST_APPROVED, data=_event_data(request))
    return request, revision


@transaction.atomic
def reject_change_request(
    *, change_request: ChangeRequest, actor: Actor, reason: str = ""
) -> ChangeRequest:
    request = _locked_pending(change_request, actor)
    request.status = ChangeRequestStatus.REJECTED
    request.decided_by = actor.label
    request.decided_at = timezone.now()
    request.decision_reason = reason
    request.save()
    record_audit(
        actor=actor,
        action="change_request.reject",
        router=request.router,
        diff={"change_request": request.pk, "requested_by": request.requested_by},
        reason=reason,
    )
    emit(
        router=request.router,
        type=webhook_events.CHANGE_REQUEST_REJECTED,
        data=_event_data(request),
    )
    return request
