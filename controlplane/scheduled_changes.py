"""Scheduled changes: a phase change, flag change or kill switch release applied at a set time.

They run through the same services as an operator's write (actor "scheduler"), so they are
audited revisions like any other and obey the change policy: a change the policy would hold
waits for a second operator's approval when it is scheduled (or edited), not when it runs.
`apply_due_changes` (Celery beat, every few seconds) takes each due change under a row lock
with SKIP LOCKED and marks it in the same transaction as its revision, so two workers racing
for it apply it exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from controlplane import services
from controlplane.actors import Actor
from controlplane.approvals import ApprovalRequired, approved_change
from controlplane.models import (
    ConfigRevision,
    Router,
    ScheduledAction,
    ScheduledChange,
    ScheduledStatus,
)
from controlplane.webhooks import events as webhook_events
from controlplane.webhooks.outbox import emit_revision_event

SCHEDULER = Actor("scheduler")
OPEN = (ScheduledStatus.AWAITING_APPROVAL, ScheduledStatus.PENDING)


def _params(action: str, params: Any) -> dict[str, Any]:
    """The keyword arguments of the action's service, checked for shape (values: the service)."""
    if action not in ScheduledAction.values:
        known = ", ".join(ScheduledAction.values)
        raise ValidationError({"action": [f"unknown action {action!r} (known: {known})"]})
    if not isinstance(params, dict):
        raise ValidationError({"params": ["expected a JSON object"]})
    allowed = {
        ScheduledAction.PHASE: {"phase": str, "domain": (str, type(None))},
        ScheduledAction.FLAG: {"name": str, "enabled": bool, "rollout_percent": (int, type(None))},
        ScheduledAction.KILL_SWITCH_RELEASE: {},
    }[ScheduledAction(action)]
    errors: dict[str, list[str]] = {}
    for key, value in params.items():
        if key not in allowed:
            errors[f"params.{key}"] = [f"not a parameter of {action}"]
        elif not isinstance(value, allowed[key]) or (
            isinstance(value, bool) and allowed[key] is not bool
        ):
            errors[f"params.{key}"] = ["wrong type"]
    required = {"phase.set": ("phase",), "flag.set": ("name", "enabled")}.get(action, ())
    for key in required:
        if key not in params:
            errors[f"params.{key}"] = ["This field is required."]
    if errors:
        raise ValidationError(errors)
    return dict(params)


def _apply(
    *, router: Router, action: str, params: dict[str, Any], actor: Actor, reason: str
) -> ConfigRevision:
    if action == ScheduledAction.PHASE:
        return services.set_phase(router=router, actor=actor, reason=reason, **params)
    if action == ScheduledAction.FLAG:
        return services.set_flag(router=router, actor=actor, reason=reason, **params)
    return services.set_kill_switch(router=router, engaged=False, actor=actor, reason=reason)


class _DryRun(Exception):
    pass


def _needs_approval(
    *, router: Router, action: str, params: dict[str, Any], actor: Actor, reason: str
) -> bool:
    """Validate the change against the current state and say whether the policy holds it:
    the write runs in a savepoint that is always rolled back (its NOTIFY goes with it)."""
    try:
        with transaction.atomic():
            _apply(router=router, action=action, params=params, actor=actor, reason=reason)
            raise _DryRun
    except _DryRun:
        return False
    except ApprovalRequired:
        return True


def _check_time(run_at: Any) -> datetime:
    if not isinstance(run_at, datetime):
        raise ValidationError({"run_at": ["expected an ISO 8601 date and time"]})
    if timezone.is_naive(run_at):
        raise ValidationError({"run_at": ["give a time zone (e.g. 2026-12-24T09:00:00Z)"]})
    if run_at <= timezone.now():
        raise ValidationError({"run_at": ["must be in the future"]})
    return run_at


@transaction.atomic
def schedule_change(
    *,
    router: Router,
    action: str,
    params: dict[str, Any],
    run_at: datetime,
    actor: Actor,
    reason: str = "",
) -> ScheduledChange:
    params = _params(action, params)
    run_at = _check_time(run_at)
    held = _needs_approval(
        router=router, action=action, params=params, actor=SCHEDULER, reason=reason
    )
    change = ScheduledChange.objects.create(
        router=router,
        action=action,
        params=params,
        run_at=run_at,
        reason=reason,
        created_by=actor.label,
        status=ScheduledStatus.AWAITING_APPROVAL if held else ScheduledStatus.PENDING,
    )
    services.record_audit(
        actor=actor,
        action="scheduled_change.create",
        router=router,
        diff={
            "scheduled_change": change.pk,
            "action": action,
            "params": params,
            "run_at": run_at.isoformat(),
            "status": change.status,
        },
        reason=reason,
    )
    return change


def _locked_open(change: ScheduledChange) -> ScheduledChange:
    change = ScheduledChange.objects.select_for_update().get(pk=change.pk)
    if change.status not in OPEN:
        raise ValidationError({"status": [f"this scheduled change is {change.status} already"]})
    return change


@transaction.atomic
def update_scheduled_change(
    *, change: ScheduledChange, actor: Actor, **values: Any
) -> ScheduledChange:
    """Edit a change that has not run (run_at, params, reason); an approval does not carry
    over to the edited change."""
    change = _locked_open(change)
    unknown = set(values) - {"run_at", "params", "reason"}
    if unknown:
        raise ValidationError({name: ["not editable"] for name in sorted(unknown)})
    before = {"run_at": change.run_at.isoformat(), "params": change.params, "reason": change.reason}
    if "params" in values:
        change.params = _params(change.action, values["params"])
    if "run_at" in values:
        change.run_at = _check_time(values["run_at"])
    if "reason" in values:
        change.reason = str(values["reason"] or "")
    held = _needs_approval(
        router=change.router,
        action=change.action,
        params=change.params,
        actor=SCHEDULER,
        reason=change.reason,
    )
    change.status = ScheduledStatus.AWAITING_APPROVAL if held else ScheduledStatus.PENDING
    change.approved_by = ""
    change.save()
    after = {"run_at": change.run_at.isoformat(), "params": change.params, "reason": change.reason}
    services.record_audit(
        actor=actor,
        action="scheduled_change.update",
        router=change.router,
        diff={
            f"scheduled_change.{k}": {"before": before[k], "after": after[k]}
            for k in before
            if before[k] != after[k]
        },
    )
    return change


@transaction.atomic
def cancel_scheduled_change(*, change: ScheduledChange, actor: Actor) -> ScheduledChange:
    change = _locked_open(change)
    change.status = ScheduledStatus.CANCELLED
    change.save(update_fields=["status"])
    services.record_audit(
        actor=actor,
        action="scheduled_change.cancel",
        router=change.router,
        diff={"scheduled_change": change.pk},
    )
    return change


@transaction.atomic
def approve_scheduled_change(*, change: ScheduledChange, actor: Actor) -> ScheduledChange:
    change = _locked_open(change)
    if change.status != ScheduledStatus.AWAITING_APPROVAL:
        raise ValidationError({"status": ["this scheduled change needs no approval"]})
    if change.created_by == actor.label:
        raise PermissionDenied("you cannot approve your own scheduled change")
    change.status = ScheduledStatus.PENDING
    change.approved_by = actor.label
    change.save(update_fields=["status", "approved_by"])
    services.record_audit(
        actor=actor,
        action="scheduled_change.approve",
        router=change.router,
        diff={"scheduled_change": change.pk, "created_by": change.created_by},
    )
    return change


def apply_due_changes(
    *, now: datetime | None = None, on_applied: Callable[[ScheduledChange], None] | None = None
) -> int:
    """Apply every pending change whose time has come; returns how many were applied."""
    applied = 0
    while True:
        with transaction.atomic():
            change = (
                ScheduledChange.objects.select_for_update(skip_locked=True)
                .select_related("router")
                .filter(status=ScheduledStatus.PENDING, run_at__lte=now or timezone.now())
                .order_by("run_at", "id")
                .first()
            )
            if change is None:
                return applied
            _run(change)
        if change.status == ScheduledStatus.APPLIED:
            applied += 1
            if on_applied is not None:
                on_applied(change)


def _run(change: ScheduledChange) -> None:
    reason = change.reason or f"scheduled change {change.pk} by {change.created_by}"
    try:
        with transaction.atomic():
            if change.approved_by:
                with approved_change():
                    revision = _apply(
                        router=change.router,
                        action=change.action,
                        params=change.params,
                        actor=SCHEDULER,
                        reason=reason,
                    )
            else:
                revision = _apply(
                    router=change.router,
                    action=change.action,
                    params=change.params,
                    actor=SCHEDULER,
                    reason=reason,
                )
    except (ValidationError, ApprovalRequired, services.StaleRevision) as exc:
        change.status = ScheduledStatus.FAILED
        change.error = _message(exc)
        change.applied_at = timezone.now()
        change.save(update_fields=["status", "error", "applied_at"])
        services.record_audit(
            actor=SCHEDULER,
            action="scheduled_change.fail",
            router=change.router,
            diff={"scheduled_change": change.pk},
            reason=change.error,
        )
        return
    change.status = ScheduledStatus.APPLIED
    change.applied_at = timezone.now()
    change.applied_revision = revision.number
    change.save(update_fields=["status", "applied_at", "applied_revision"])
    emit_revision_event(
        router=change.router,
        type=webhook_events.SCHEDULED_CHANGE_APPLIED,
        revision=revision,
        actor=SCHEDULER,
        reason=reason,
        scheduled_change=change.pk,
        action=change.action,
        params=change.params,
        created_by=change.created_by,
    )


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return str(exc)
