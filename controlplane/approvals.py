"""The change policy: which writes need a second operator's approval before they publish.

One check, in `publish_revision`, so every write path (API, dashboard, CLI, scheduler) obeys
it: a held write raises `ApprovalRequired`, carrying the exact state it would have published,
and its caller files that as a change request. Approving the request publishes that state under
`approved_change()`, which lets it through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from controlplane.actors import Actor
from controlplane.models import ChangePolicy, Router
from controlplane.snapshot import Snapshot

# Never held: the emergency brakes, whatever the policy says.
EMERGENCY_ACTIONS = frozenset({"kill_switch.engage", "emergency_rollback"})

_approved: ContextVar[bool] = ContextVar("routeplane_change_approved", default=False)


class ApprovalRequired(Exception):
    """A write the router's change policy holds for a second operator's approval."""

    def __init__(
        self,
        *,
        router: Router,
        base_revision: int,
        action: str,
        before: Snapshot,
        after: Snapshot,
        reasons: list[str],
        actor: Actor,
        reason: str,
    ) -> None:
        self.router = router
        self.base_revision = base_revision
        self.action = action
        self.before = before
        self.after = after
        self.reasons = reasons
        self.actor = actor
        self.reason = reason
        super().__init__("this change needs a second operator's approval: " + "; ".join(reasons))


@contextlib.contextmanager
def approved_change() -> Iterator[None]:
    """Publish what runs inside as already approved (an approved request or scheduled change)."""
    token = _approved.set(True)
    try:
        yield
    finally:
        _approved.reset(token)


def approval_reasons(policy: ChangePolicy | None, before: Snapshot, after: Snapshot) -> list[str]:
    """Why `policy` holds the change from `before` to `after` (empty: it does not)."""
    if policy is None:
        return []
    reasons = []
    if policy.approve_full_phase and after.phase == "full" and before.phase != "full":
        reasons.append("going to phase full needs approval")
    if policy.approve_kill_switch_release and before.kill_switch and not after.kill_switch:
        reasons.append("releasing the kill switch needs approval")
    step = policy.approve_threshold_change_above
    old, new = before.config.get("threshold"), after.config.get("threshold")
    if step is not None and _is_number(old) and _is_number(new) and abs(new - old) > step:
        reasons.append(f"a threshold change above {step:g} needs approval ({old:g} → {new:g})")
    return reasons


def check_policy(
    *,
    router: Router,
    base_revision: int,
    action: str,
    before: Snapshot,
    after: Snapshot,
    actor: Actor,
    reason: str,
) -> None:
    """Raise ApprovalRequired when the router's policy holds this write."""
    if _approved.get() or action in EMERGENCY_ACTIONS:
        return
    policy = ChangePolicy.objects.filter(router=router).first()
    reasons = approval_reasons(policy, before, after)
    if reasons:
        raise ApprovalRequired(
            router=router,
            base_revision=base_revision,
            action=action,
            before=before,
            after=after,
            reasons=reasons,
            actor=actor,
            reason=reason,
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
