"""Dynamic threshold: with `routellm_dynamic_threshold` on (evaluated without a key, so only at
100 %), a beat job moves each router's threshold, and each domain override's threshold where
that domain has enough calls, toward the calibrated one (tracking.calibration).

Guard rails, all in settings: a minimum sample (ROUTEPLANE_CALIBRATION_MIN_SAMPLE), bounds
(ROUTEPLANE_DYNAMIC_THRESHOLD_MIN/MAX) and a maximum step per run
(ROUTEPLANE_DYNAMIC_THRESHOLD_MAX_STEP). All of a run's changes go in one revision by the actor
"calibrator": audited, announced (`threshold.calibrated`) and rolled back like any other.
Every run leaves a CalibrationRun row, which the router page shows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from controlplane import services
from controlplane.actors import Actor
from controlplane.approvals import ApprovalRequired
from controlplane.change_requests import file_change_request
from controlplane.models import ConfigRevision, Router
from controlplane.snapshot import Snapshot
from controlplane.webhooks.events import THRESHOLD_CALIBRATED
from controlplane.webhooks.outbox import emit_revision_event
from routing.config import KNOWN_DOMAINS
from routing.evaluation import ROUTELLM_DYNAMIC_THRESHOLD, flag_on
from tracking.calibration import (
    Calibration,
    calibration,
    current_threshold,
    default_target,
    next_threshold,
    threshold_changes,
)
from tracking.models import CalibrationRun

CALIBRATOR = Actor("calibrator")
SCHEDULE_NAME = "tracking: dynamic threshold"
# Moves smaller than this are noise between two runs over nearly the same calls.
MIN_MOVE = 0.0005
# A second run this soon after one (two workers, a manual run) would take a second step.
MIN_RUN_INTERVAL = timedelta(seconds=60)


def dynamic_threshold_on(revision: ConfigRevision) -> bool:
    return flag_on(Snapshot.of(revision).flags.get(ROUTELLM_DYNAMIC_THRESHOLD), "", key=None)


def _move(result: Calibration) -> float | None:
    """The run's new threshold for one calibration, or None to leave it."""
    if result.proposed_threshold is None:
        return None
    new = next_threshold(
        result.current_threshold,
        result.proposed_threshold,
        low=settings.ROUTEPLANE_DYNAMIC_THRESHOLD_MIN,
        high=settings.ROUTEPLANE_DYNAMIC_THRESHOLD_MAX,
        max_step=settings.ROUTEPLANE_DYNAMIC_THRESHOLD_MAX_STEP,
    )
    return new if abs(new - result.current_threshold) >= MIN_MOVE else None


def _plan(router: Router, days: int) -> tuple[dict[str | None, float], list[str], list[dict]]:
    """(scope -> new threshold, summary lines, calibrations) for the router (scope None) and
    every known domain with enough calls."""
    target = default_target(router.current_revision.config)
    moves: dict[str | None, float] = {}
    lines: list[str] = []
    details: list[dict[str, Any]] = []
    for domain in (None, *KNOWN_DOMAINS):
        result = calibration(router=router, days=days, target_strong_share=target, domain=domain)
        if domain is not None and result.sample_size == 0:
            continue
        details.append(result.as_dict())
        name = domain or "router"
        new = _move(result)
        if result.refusal:
            lines.append(f"{name}: {result.refusal}")
        elif new is None:
            lines.append(
                f"{name}: {result.current_threshold} kept (proposal {result.proposed_threshold})"
            )
        else:
            moves[domain] = new
            lines.append(
                f"{name}: {result.current_threshold} → {new} "
                f"(proposal {result.proposed_threshold}, {result.sample_size} calls)"
            )
    return moves, lines, details


def recalibrate_router(*, router: Router, now: datetime | None = None) -> CalibrationRun:
    """One dynamic-threshold run for `router`: at most one revision, always one run record."""
    now = now or timezone.now()
    days = settings.ROUTEPLANE_CALIBRATION_DAYS
    try:
        with transaction.atomic():
            router, current = services.locked_router(router)
            if not dynamic_threshold_on(current):
                return CalibrationRun.objects.create(
                    router=router, ran_at=now, outcome="skipped",
                    summary=f"{ROUTELLM_DYNAMIC_THRESHOLD} is not on at 100 %.",
                )  # fmt: skip
            last = CalibrationRun.objects.filter(router=router).first()
            if last is not None and now - last.ran_at < MIN_RUN_INTERVAL:
                return last
            moves, lines, details = _plan(router, days)
            if not moves:
                return CalibrationRun.objects.create(
                    router=router, ran_at=now, outcome="unchanged", summary="\n".join(lines)
                )
            revision = _publish(router, current.config, moves, lines, details)
            return CalibrationRun.objects.create(
                router=router, ran_at=now, outcome="published", revision=revision.number,
                summary="\n".join(lines), changes={str(k or "router"): v for k, v in moves.items()},
            )  # fmt: skip
    except ApprovalRequired as held:
        file_change_request(held=held)
        return CalibrationRun.objects.create(
            router=router, ran_at=now, outcome="held", summary=f"Needs approval: {held}"
        )


def _publish(
    router: Router,
    config: dict[str, Any],
    moves: dict[str | None, float],
    lines: list[str],
    details: list[dict[str, Any]],
) -> ConfigRevision:
    """One revision for every move; one threshold.calibrated event with all of them."""
    changes: dict[str, Any] = {}
    for domain, threshold in moves.items():
        merged = {**config, **changes}
        changes.update(threshold_changes(merged, domain, threshold))
    revision = services.update_config(
        router=router,
        changes=changes,
        actor=CALIBRATOR,
        reason="dynamic threshold: " + "; ".join(lines),
    )
    emit_revision_event(
        router=router,
        type=THRESHOLD_CALIBRATED,
        revision=revision,
        actor=CALIBRATOR,
        reason="dynamic threshold",
        changes={str(k or "router"): v for k, v in moves.items()},
        previous={str(k or "router"): current_threshold(config, k) for k in moves},
        calibration=details,
    )
    return revision


def routers_with_dynamic_threshold() -> list[Router]:
    routers = Router.objects.select_related("current_revision")
    return [r for r in routers if r.current_revision and dynamic_threshold_on(r.current_revision)]


def dynamic_threshold_status(*, router: Router) -> dict[str, Any]:
    """What the router page shows: flag state, the schedule, its next run, the last run."""
    from django_celery_beat.models import PeriodicTask

    now = timezone.now()
    task = PeriodicTask.objects.filter(name=SCHEDULE_NAME).first()
    next_run = None
    if task is not None and task.enabled:
        remaining = task.schedule.remaining_estimate(task.last_run_at or task.date_changed or now)
        next_run = max(now, now + remaining)
    return {
        "enabled": dynamic_threshold_on(router.current_revision),
        "schedule": task,
        "paused": task is not None and not task.enabled,
        "next_run": next_run,
        "last_run": CalibrationRun.objects.filter(router=router).first(),
    }
