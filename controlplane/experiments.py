"""A/B experiments: create, start, stop and conclude (each one transaction, audited).

Starting and stopping publish a revision, so the experiment reaches routers the way every
change does: in the flags document (its `experiment` entry), with a new ETag, within a second.
The running experiment rides along every later revision (flag edits, phases, rollbacks keep it)
until it is stopped or concluded. Concluding with `apply_treatment` publishes one revision with
the treatment's threshold as `config.threshold` and the experiment gone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from controlplane.actors import Actor
from controlplane.models import ConfigRevision, Experiment, ExperimentStatus, Router
from controlplane.services import locked_router, publish_revision, record_audit
from controlplane.snapshot import Snapshot

MAX_NAME = 200


def _number_errors(name: str, value: object) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        return [f"{name} must be a number between 0 and 1"]
    return []


@transaction.atomic
def create_experiment(
    *,
    router: Router,
    name: str,
    treatment_threshold: float,
    split: float = 0.5,
    ends_at: datetime | None = None,
    actor: Actor,
) -> Experiment:
    """A draft experiment (nothing reaches routers until it starts)."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        errors["name"] = [f"give the experiment a name (1-{MAX_NAME} characters)"]
    for field, value in (("treatment_threshold", treatment_threshold), ("split", split)):
        if messages := _number_errors(field, value):
            errors[field] = messages
    if ends_at is not None and ends_at <= timezone.now():
        errors["ends_at"] = ["must be in the future"]
    if errors:
        raise ValidationError(errors)
    experiment = Experiment.objects.create(
        router=router,
        name=name,
        treatment_threshold=float(treatment_threshold),
        split=float(split),
        ends_at=ends_at,
        created_by=actor.label,
    )
    record_audit(
        actor=actor,
        action="experiment.create",
        router=router,
        diff={"experiment": {"before": None, "after": _described(experiment)}},
    )
    return experiment


def _described(experiment: Experiment) -> dict[str, Any]:
    return experiment.document_entry() | {"name": experiment.name, "status": experiment.status}


def _locked(experiment: Experiment) -> tuple[Router, ConfigRevision, Experiment]:
    router, current = locked_router(experiment.router)
    return router, current, Experiment.objects.select_for_update().get(pk=experiment.pk)


def _refuse(experiment: Experiment, allowed: tuple[str, ...], verb: str) -> None:
    if experiment.status not in allowed:
        raise ValidationError({"status": [f"a {experiment.status} experiment cannot be {verb}"]})


@transaction.atomic
def start_experiment(*, experiment: Experiment, actor: Actor, reason: str = "") -> ConfigRevision:
    """Run a draft: publish a revision whose flags document carries it."""
    router, current, experiment = _locked(experiment)
    _refuse(experiment, (ExperimentStatus.DRAFT,), "started")
    if router.experiments.filter(status=ExperimentStatus.RUNNING).exists():
        raise ValidationError({"status": ["another experiment is running on this router"]})
    now = timezone.now()
    if experiment.ends_at is not None and experiment.ends_at <= now:
        raise ValidationError({"ends_at": ["the experiment's end has passed"]})
    experiment.status = ExperimentStatus.RUNNING
    experiment.starts_at = now
    experiment.save(update_fields=["status", "starts_at"])
    before = Snapshot.of(current)
    return publish_revision(
        router=router,
        snapshot=before.evolve(experiment=experiment.document_entry()),
        actor=actor,
        action="experiment.start",
        before=before,
        reason=reason or f"A/B experiment {experiment.name!r} started",
    )


@transaction.atomic
def stop_experiment(*, experiment: Experiment, actor: Actor, reason: str = "") -> ConfigRevision:
    """Stop a running experiment: routers drop it from the next revision on."""
    router, current, experiment = _locked(experiment)
    _refuse(experiment, (ExperimentStatus.RUNNING,), "stopped")
    return _end(router, current, experiment, actor, ExperimentStatus.STOPPED, reason)


@transaction.atomic
def conclude_experiment(
    *,
    experiment: Experiment,
    actor: Actor,
    conclusion: str,
    apply_treatment: bool = False,
) -> Experiment:
    """Record the conclusion (running or stopped experiments); with `apply_treatment`, publish
    the treatment's threshold as the router's config.threshold (one audited revision)."""
    conclusion = (conclusion or "").strip()
    if not conclusion:
        raise ValidationError({"conclusion": ["say what the experiment showed"]})
    router, current, experiment = _locked(experiment)
    _refuse(experiment, (ExperimentStatus.RUNNING, ExperimentStatus.STOPPED), "concluded")
    applied = apply_treatment
    if experiment.status == ExperimentStatus.RUNNING or apply_treatment:
        revision = _end(
            router, current, experiment, actor, ExperimentStatus.CONCLUDED, conclusion, applied
        )
        if applied:
            experiment.applied_revision = revision.number
    experiment.status = ExperimentStatus.CONCLUDED
    experiment.conclusion = conclusion
    experiment.stopped_at = experiment.stopped_at or timezone.now()
    experiment.save(update_fields=["status", "conclusion", "stopped_at", "applied_revision"])
    record_audit(
        actor=actor,
        action="experiment.conclude",
        router=router,
        revision_number=experiment.applied_revision,
        diff={"experiment": {"before": None, "after": _described(experiment)}},
        reason=conclusion,
    )
    return experiment


def _end(
    router: Router,
    current: ConfigRevision,
    experiment: Experiment,
    actor: Actor,
    status: str,
    reason: str,
    apply_treatment: bool = False,
) -> ConfigRevision:
    """One revision without the experiment (and, applying, with its threshold)."""
    if experiment.status == ExperimentStatus.RUNNING:
        experiment.stopped_at = timezone.now()
    experiment.status = status
    experiment.save(update_fields=["status", "stopped_at"])
    before = Snapshot.of(current)
    after = before.evolve(experiment=None)
    if apply_treatment:
        after = after.with_config(threshold=experiment.treatment_threshold)
    action = "experiment.apply" if apply_treatment else "experiment.stop"
    return publish_revision(
        router=router,
        snapshot=after,
        actor=actor,
        action=action,
        before=before,
        reason=reason or f"A/B experiment {experiment.name!r} stopped",
    )


def stop_ended_experiments(*, now: datetime | None = None) -> int:
    """Stop every running experiment whose planned end has passed (beat job, every minute);
    returns how many. Safe to run twice at once: each stop re-checks under the row locks."""
    now = now or timezone.now()
    stopped = 0
    due = Experiment.objects.filter(status=ExperimentStatus.RUNNING, ends_at__lte=now)
    for experiment in due.select_related("router"):
        try:
            stop_experiment(
                experiment=experiment,
                actor=Actor.system("experiments"),
                reason=f"A/B experiment {experiment.name!r} reached its end",
            )
        except ValidationError:  # stopped by someone else meanwhile
            continue
        stopped += 1
    return stopped
