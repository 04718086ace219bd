"""Every control-plane write: one function each, one transaction, a revision and an audit row.

Each takes a row lock on the router first, so two operators never publish interleaved
revisions; a stale `expected_revision` raises StaleRevision and writes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from controlplane.actors import Actor
from controlplane.approvals import check_policy
from controlplane.models import (
    PHASE_ORDER,
    ApiKey,
    AuditEntry,
    ConfigRevision,
    FlagState,
    Phase,
    Role,
    Router,
)
from controlplane.phases import PhaseError, apply_phase, emergency_snapshot, is_lower
from controlplane.snapshot import Snapshot
from controlplane.webhooks import events as webhook_events
from controlplane.webhooks.outbox import emit_revision_event
from routing.config import CONFIG_FIELDS, config_errors, validate_config_dict
from routing.evaluation import FLAG_NAMES

REVISIONS_CHANNEL = "routeplane_revisions"
KEYS_CHANNEL = "routeplane_keys"
KEY_PREFIX_LENGTH = 11  # "rp_" + 8 characters: enough to name a key, useless to guess it


class StaleRevision(Exception):
    """The caller's If-Match names a revision that is no longer current."""

    def __init__(self, current: int, expected: int) -> None:
        self.current = current
        self.expected = expected
        super().__init__(f"revision {expected} is stale: the current revision is {current}")


class NothingToStepBackTo(Exception):
    pass


def _fail(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


def locked_router(router: Router) -> tuple[Router, ConfigRevision]:
    """The router row locked for a write, and its current revision (with its flag states)."""
    router = Router.objects.select_for_update().get(pk=router.pk)
    current = ConfigRevision.objects.prefetch_related("flag_states").get(
        pk=router.current_revision_id
    )
    return router, current


def _check_expected(current: ConfigRevision, expected_revision: int | None) -> None:
    if expected_revision is not None and current.number != expected_revision:
        raise StaleRevision(current.number, expected_revision)


def publish_revision(
    *,
    router: Router,
    snapshot: Snapshot,
    actor: Actor,
    action: str,
    reason: str = "",
    before: Snapshot | None = None,
    restored_from: int | None = None,
) -> ConfigRevision:
    """Write the next revision, point the router at it, audit it and notify the flag servers.

    Must run inside the caller's transaction, with the router row locked. One rule for every
    write (API, dashboard, commands): a snapshot equal to `before` changes nothing, so it
    publishes nothing and the current revision comes back with `changed` False. A change the
    router's change policy holds raises ApprovalRequired instead (controlplane.approvals).
    """
    if before is not None and not before.diff(snapshot):
        current = ConfigRevision.objects.prefetch_related("flag_states").get(
            pk=router.current_revision_id
        )
        current.changed = False
        return current
    last = router.revisions.order_by("-number").values_list("number", flat=True).first() or 0
    if before is not None:
        check_policy(
            router=router,
            base_revision=last,
            action=action,
            before=before,
            after=snapshot,
            actor=actor,
            reason=reason,
        )
    revision = ConfigRevision.objects.create(
        router=router,
        number=last + 1,
        config=snapshot.config,
        phase=snapshot.phase,
        phase_domain=snapshot.phase_domain,
        kill_switch=snapshot.kill_switch,
        kill_switch_reason=snapshot.kill_switch_reason,
        experiment=snapshot.experiment,
        action=action,
        actor=actor.label,
        reason=reason,
        restored_from=restored_from,
    )
    FlagState.objects.bulk_create(
        FlagState(
            revision=revision,
            name=name,
            enabled=bool(snapshot.flags[name]["enabled"]),
            rollout_percent=int(snapshot.flags[name]["rollout_percent"]),
        )
        for name in FLAG_NAMES
    )
    router.current_revision = revision
    router.save(update_fields=["current_revision"])
    record_audit(
        actor=actor,
        action=action,
        router=router,
        revision_number=revision.number,
        diff=before.diff(snapshot) if before is not None else snapshot.as_dict(),
        reason=reason,
    )
    notify(REVISIONS_CHANNEL, f"{router.pk}:{router.slug}:{revision.number}")
    return revision


def record_audit(
    *,
    actor: Actor,
    action: str,
    router: Router | None = None,
    revision_number: int | None = None,
    diff: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    return AuditEntry.objects.create(
        router=router,
        actor=actor.label,
        action=action,
        revision_number=revision_number,
        diff=diff or {},
        reason=reason,
        source_ip=actor.ip,
    )


def notify(channel: str, payload: str) -> None:
    """PostgreSQL NOTIFY: delivered to listeners only when the transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])


# --- Routers and revisions -----------------------------------------------------------------


@transaction.atomic
def create_router(*, slug: str, name: str = "", actor: Actor) -> Router:
    """A new router at revision 1: phase disabled, RouteLLMConfig defaults, every flag off."""
    from django.core.validators import validate_slug

    try:
        validate_slug(slug)
    except ValidationError:
        raise _fail("slug", "use letters, numbers, hyphens and underscores only") from None
    if len(slug) > 64:
        raise _fail("slug", "at most 64 characters")
    if Router.objects.filter(slug=slug).exists():
        raise _fail("slug", f"a router named {slug!r} exists already")
    try:
        router = Router.objects.create(slug=slug, name=name or slug)
    except IntegrityError:  # created by a concurrent request since the check above
        raise _fail("slug", f"a router named {slug!r} exists already") from None
    router = Router.objects.select_for_update().get(pk=router.pk)
    publish_revision(router=router, snapshot=Snapshot(), actor=actor, action="router.create")
    return router


@transaction.atomic
def update_config(
    *,
    router: Router,
    changes: dict[str, Any],
    actor: Actor,
    partial: bool = True,
    expected_revision: int | None = None,
    reason: str = "",
) -> ConfigRevision:
    """PUT (partial=False, every field) or PATCH (some fields) the RouteLLMConfig."""
    errors = config_errors(changes, partial=partial)
    if errors:
        raise ValidationError(errors)
    clean = validate_config_dict(changes, partial=partial)
    router, current = locked_router(router)
    _check_expected(current, expected_revision)
    before = Snapshot.of(current)
    after = before.with_config(**{k: clean[k] for k in CONFIG_FIELDS if k in clean})
    return publish_revision(
        router=router,
        snapshot=after,
        actor=actor,
        action="config.update",
        before=before,
        reason=reason,
    )


@transaction.atomic
def edit_config(
    *,
    router: Router,
    values: dict[str, Any],
    actor: Actor,
    expected_revision: int | None = None,
    reason: str = "",
) -> ConfigRevision:
    """Save an edited config form: only the fields whose values changed go in the revision, so
    its diff reads as the edit (nothing changed: the current revision, `changed` False)."""
    router, current = locked_router(router)
    _check_expected(current, expected_revision)
    changes = Snapshot.of(current).config_changes(values)
    return update_config(
        router=router,
        changes=changes,
        actor=actor,
        partial=True,
        expected_revision=current.number,
        reason=reason,
    )


@transaction.atomic
def set_flag(
    *,
    router: Router,
    name: str,
    enabled: bool,
    rollout_percent: int | None = None,
    actor: Actor,
    expected_revision: int | None = None,
    reason: str = "",
) -> ConfigRevision:
    """Set one flag; the phase label is kept (flag edits are not phase changes)."""
    if name not in FLAG_NAMES:
        raise _fail("name", f"unknown flag {name!r} (known: {', '.join(FLAG_NAMES)})")
    if rollout_percent is None:
        rollout_percent = 100 if enabled else 0
    if (
        isinstance(rollout_percent, bool)
        or not isinstance(rollout_percent, int)
        or not (0 <= rollout_percent <= 100)
    ):
        raise _fail("rollout_percent", "must be an integer from 0 to 100")
    router, current = locked_router(router)
    _check_expected(current, expected_revision)
    before = Snapshot.of(current)
    after = before.with_flags({name: {"enabled": enabled, "rollout_percent": rollout_percent}})
    return publish_revision(
        router=router,
        snapshot=after,
        actor=actor,
        action="flag.set",
        before=before,
        reason=reason,
    )


@transaction.atomic
def set_phase(
    *,
    router: Router,
    phase: str,
    actor: Actor,
    domain: str | None = None,
    expected_revision: int | None = None,
    reason: str = "",
) -> ConfigRevision:
    """Apply a phase preset (disabled → monitoring → single_domain → full)."""
    router, current = locked_router(router)
    _check_expected(current, expected_revision)
    before = Snapshot.of(current)
    try:
        after = apply_phase(before, phase, domain)
    except PhaseError as exc:
        raise _fail(exc.field, str(exc)) from None
    revision = publish_revision(
        router=router,
        snapshot=after,
        actor=actor,
        action="phase.set",
        before=before,
        reason=reason,
    )
    _emit_phase_changed(router, before, revision, actor, reason)  # webhook
    return revision


@transaction.atomic
def step_back(
    *,
    router: Router,
    actor: Actor,
    expected_revision: int | None = None,
    reason: str = "",
) -> ConfigRevision:
    """Restore the latest earlier revision with a lower phase (keeping the kill switch).

    With no such revision (the router jumped straight up), the next lower preset is applied.
    """
    router, current = locked_router(router)
    _check_expected(current, expected_revision)
    if current.phase == Phase.DISABLED:
        raise NothingToStepBackTo("the router is already disabled")
    lower = [p for p, order in PHASE_ORDER.items() if order < PHASE_ORDER[current.phase]]
    target = (
        router.revisions.filter(phase__in=lower, number__lt=current.number)
        .prefetch_related("flag_states")
        .order_by("-number")
        .first()
    )
    before = Snapshot.of(current)
    if target is not None:
        after = Snapshot.of(target).evolve(
            kill_switch=before.kill_switch,
            kill_switch_reason=before.kill_switch_reason,
            experiment=before.experiment,  # experiments start and stop only by their services
        )
        restored = target.number
    else:
        previous = lower[-1]
        after = apply_phase(before, previous, before.phase_domain or None)
        restored = None
    assert is_lower(after.phase, current.phase)
    revision = publish_revision(
        router=router,
        snapshot=after,
        actor=actor,
        action="phase.step_back",
        before=before,
        reason=reason,
        restored_from=restored,
    )
    _emit_phase_changed(router, before, revision, actor, reason)  # webhook
    return revision


@transaction.atomic
def set_kill_switch(
    *,
    router: Router,
    engaged: bool,
    actor: Actor,
    reason: str = "",
    expected_revision: int | None = None,
) -> ConfigRevision:
    """Engage or release the kill switch. Only this turns it off; rollbacks keep it."""
    reason = (reason or "").strip()
    if engaged and not reason:
        raise _fail("reason", "say why you engage the kill switch (it is kept in the audit log)")
    router, current = locked_router(router)
    _check_expected(current, expected_revision)
    before = Snapshot.of(current)
    after = before.evolve(kill_switch=engaged, kill_switch_reason=reason if engaged else "")
    action = "kill_switch.engage" if engaged else "kill_switch.release"
    revision = publish_revision(
        router=router, snapshot=after, actor=actor, action=action, before=before, reason=reason
    )
    if before.kill_switch != engaged:  # webhook
        kind = "kill_switch.engaged" if engaged else "kill_switch.released"
        emit_revision_event(router=router, type=kind, revision=revision, actor=actor, reason=reason)
    return revision


@transaction.atomic
def rollback_to(
    *,
    router: Router,
    number: int,
    actor: Actor,
    reason: str = "",
    expected_revision: int | None = None,
) -> ConfigRevision:
    """Publish a copy of revision `number`: its config, flags and phase; kill switch (and the
    running experiment) kept."""
    router, current = locked_router(router)
    _check_expected(current, expected_revision)
    target = router.revisions.filter(number=number).prefetch_related("flag_states").first()
    if target is None:
        raise _fail("revision", f"router {router.slug} has no revision {number}")
    before = Snapshot.of(current)
    after = Snapshot.of(target).evolve(
        kill_switch=before.kill_switch,
        kill_switch_reason=before.kill_switch_reason,
        experiment=before.experiment,  # experiments start and stop only by their services
    )
    revision = publish_revision(
        router=router,
        snapshot=after,
        actor=actor,
        action="rollback",
        before=before,
        reason=reason,
        restored_from=number,
    )
    emit_revision_event(  # webhook
        router=router,
        type=webhook_events.REVISION_ROLLED_BACK,
        revision=revision,
        actor=actor,
        reason=reason,
        restored_from=number,
    )
    return revision


@transaction.atomic
def emergency_rollback(*, router: Router, actor: Actor, reason: str) -> ConfigRevision:
    """One revision: kill switch on, routing off everywhere, tracking and monitoring on."""
    reason = (reason or "").strip()
    if not reason:
        raise _fail("reason", "an emergency rollback needs a reason")
    router, current = locked_router(router)
    before = Snapshot.of(current)
    after = emergency_snapshot(before, reason)
    revision = publish_revision(
        router=router,
        snapshot=after,
        actor=actor,
        action="emergency_rollback",
        before=before,
        reason=reason,
    )
    emit_revision_event(  # webhook
        router=router,
        type=webhook_events.KILL_SWITCH_ENGAGED,
        revision=revision,
        actor=actor,
        reason=reason,
        emergency_rollback=True,
    )
    return revision


def _emit_phase_changed(
    router: Router, before: Snapshot, revision: ConfigRevision, actor: Actor, reason: str
) -> None:
    if (before.phase, before.phase_domain) != (revision.phase, revision.phase_domain):
        emit_revision_event(
            router=router,
            type=webhook_events.PHASE_CHANGED,
            revision=revision,
            actor=actor,
            reason=reason,
            previous_phase=before.phase,
            previous_phase_domain=before.phase_domain,
        )


# --- API keys -------------------------------------------------------------------------------


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def create_api_key(
    *, router: Router, role: str, actor: Actor, name: str = ""
) -> tuple[ApiKey, str]:
    """A new key; the raw key is returned once and never stored (only its SHA-256)."""
    if role not in Role.values:
        raise _fail("role", f"unknown role {role!r} (known: {', '.join(Role.values)})")
    raw = "rp_" + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        router=router,
        name=name,
        role=role,
        prefix=raw[:KEY_PREFIX_LENGTH],
        key_hash=hash_key(raw),
        created_by=actor.label,
    )
    record_audit(
        actor=actor,
        action="api_key.create",
        router=router,
        diff={"prefix": key.prefix, "role": role, "name": name},
    )
    return key, raw


@transaction.atomic
def revoke_api_key(*, key: ApiKey, actor: Actor, reason: str = "") -> ApiKey:
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        record_audit(
            actor=actor,
            action="api_key.revoke",
            router=key.router,
            diff={"prefix": key.prefix, "role": key.role},
            reason=reason,
        )
        notify(KEYS_CHANNEL, key.key_hash)
    return key
