"""Control-plane data: routers, immutable config revisions, flag states, audit log, API keys."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from routing.config import KNOWN_DOMAINS
from routing.evaluation import FLAG_NAMES


class Phase(models.TextChoices):
    DISABLED = "disabled", "Disabled"
    MONITORING = "monitoring", "Monitoring"
    SINGLE_DOMAIN = "single_domain", "Single domain"
    FULL = "full", "Full"


PHASE_ORDER: dict[str, int] = {phase.value: index for index, phase in enumerate(Phase)}


class Role(models.TextChoices):
    ROUTER = "router", "Router"
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"


class Router(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    # The one revision routers get; moved only by services, under a row lock on the router.
    current_revision = models.ForeignKey(
        "ConfigRevision", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class ConfigRevision(models.Model):
    """One published state of a router: config, flags, phase, kill switch. Never updated."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    config = models.JSONField()
    phase = models.CharField(max_length=20, choices=Phase.choices, default=Phase.DISABLED)
    phase_domain = models.CharField(max_length=32, blank=True, default="")
    kill_switch = models.BooleanField(default=False)
    kill_switch_reason = models.TextField(blank=True, default="")
    action = models.CharField(max_length=64)
    actor = models.CharField(max_length=200)
    reason = models.TextField(blank=True, default="")
    restored_from = models.PositiveIntegerField(null=True, blank=True)
    # The A/B experiment running under this revision ({"id", "split", "treatment_threshold"}),
    # as the flags document shows it; null when none runs (controlplane.experiments).
    experiment = models.JSONField(null=True, blank=True, default=None)
    created_at = models.DateTimeField(default=timezone.now)

    # Not stored: False on the current revision a write returns when it changed nothing
    # (`services.publish_revision`), so callers can answer "changed": false.
    changed: bool = True

    class Meta:
        ordering = ["router", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["router", "number"], name="revision_number_per_router"),
            models.CheckConstraint(
                condition=Q(phase__in=[p.value for p in Phase]), name="revision_phase_known"
            ),
            models.CheckConstraint(
                condition=Q(phase_domain="") | Q(phase_domain__in=list(KNOWN_DOMAINS)),
                name="revision_phase_domain_known",
            ),
            models.CheckConstraint(
                condition=~Q(phase=Phase.SINGLE_DOMAIN) | ~Q(phase_domain=""),
                name="revision_single_domain_names_domain",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="revision_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.router_id}#{self.number}"

    def flags_dict(self) -> dict[str, dict[str, Any]]:
        return flag_states_dict(self.flag_states.all())


def flag_states_dict(states: Iterable[FlagState]) -> dict[str, dict[str, Any]]:
    """{"<flag>": {"enabled", "rollout_percent"}} in FLAG_NAMES order, as documents show them."""
    return {
        state.name: {"enabled": state.enabled, "rollout_percent": state.rollout_percent}
        for state in sorted(states, key=lambda s: FLAG_NAMES.index(s.name))
    }


class FlagState(models.Model):
    revision = models.ForeignKey(
        ConfigRevision, on_delete=models.CASCADE, related_name="flag_states"
    )
    name = models.CharField(max_length=64, choices=[(n, n) for n in FLAG_NAMES])
    enabled = models.BooleanField(default=False)
    rollout_percent = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["revision", "name"], name="flag_once_per_revision"),
            models.CheckConstraint(
                condition=Q(rollout_percent__gte=0) & Q(rollout_percent__lte=100),
                name="flag_rollout_percent_0_100",
            ),
        ]


class AuditEntry(models.Model):
    """Who changed what. Append-only: a database trigger refuses UPDATE and DELETE."""

    router = models.ForeignKey(
        Router, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries"
    )
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    revision_number = models.PositiveIntegerField(null=True, blank=True)
    diff = models.JSONField(default=dict)
    reason = models.TextField(blank=True, default="")
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["router", "-created_at"], name="audit_router_time")]
        verbose_name_plural = "audit entries"


class ApiKey(models.Model):
    """An API key of one router. Only a SHA-256 of the key and a short prefix are stored."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True, default="")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200, blank=True, default="")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["router", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="api_key_role_known"
            )
        ]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RouterClient(models.Model):
    """A router process seen polling flags; written in batches, never once per poll."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="clients")
    client_id = models.CharField(max_length=128)
    sdk_version = models.CharField(max_length=64, blank=True, default="")
    user_agent = models.CharField(max_length=256, blank=True, default="")
    revision = models.PositiveIntegerField(null=True, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["router", "-last_seen"]
        constraints = [
            models.UniqueConstraint(fields=["router", "client_id"], name="client_once_per_router")
        ]


class ChangePolicy(models.Model):
    """Which changes of a router need a second operator's approval (none, by default).

    Emergency actions (kill switch engage, emergency rollback) and steps down never do.
    """

    router = models.OneToOneField(Router, on_delete=models.CASCADE, related_name="change_policy")
    approve_full_phase = models.BooleanField(default=False)
    approve_kill_switch_release = models.BooleanField(default=False)
    # A change of config.threshold by more than this (absolute); null: threshold changes free.
    approve_threshold_change_above = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(approve_threshold_change_above__isnull=True)
                | (
                    Q(approve_threshold_change_above__gte=0)
                    & Q(approve_threshold_change_above__lte=1)
                ),
                name="change_policy_threshold_step_fraction",
            )
        ]


class ChangeRequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class ChangeRequest(models.Model):
    """A write the policy held for approval: the exact state it would publish on its base.

    Approval publishes `snapshot` only while `base_revision` is still current; a request whose
    base moved on is stale and must be made again from the current state.
    """

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="change_requests")
    base_revision = models.PositiveIntegerField()
    action = models.CharField(max_length=64)
    snapshot = models.JSONField()
    diff = models.JSONField(default=dict)
    reasons = models.JSONField(default=list, help_text="why the policy asks for approval")
    reason = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=16, choices=ChangeRequestStatus.choices, default=ChangeRequestStatus.PENDING
    )
    requested_by = models.CharField(max_length=200)
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.CharField(max_length=200, blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    applied_revision = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["router", "-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ChangeRequestStatus]),
                name="change_request_status_known",
            )
        ]


class ScheduledAction(models.TextChoices):
    PHASE = "phase.set", "Phase change"
    FLAG = "flag.set", "Flag change"
    KILL_SWITCH_RELEASE = "kill_switch.release", "Kill switch release"


class ScheduledStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PENDING = "pending", "Pending"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ScheduledChange(models.Model):
    """A phase change, flag change or kill switch release to apply at `run_at` (beat job)."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="scheduled_changes")
    action = models.CharField(max_length=32, choices=ScheduledAction.choices)
    params = models.JSONField(default=dict)
    run_at = models.DateTimeField(db_index=True)
    status = models.CharField(
        max_length=20, choices=ScheduledStatus.choices, default=ScheduledStatus.PENDING
    )
    reason = models.TextField(blank=True, default="")
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    approved_by = models.CharField(max_length=200, blank=True, default="")
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_revision = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["router", "run_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=[a.value for a in ScheduledAction]),
                name="scheduled_change_action_known",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ScheduledStatus]),
                name="scheduled_change_status_known",
            ),
        ]


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    CONCLUDED = "concluded", "Concluded"


class Experiment(models.Model):
    """An A/B test of a candidate threshold against the router's current config.

    Control: the current revision's config as is. Treatment: the same config with
    `config.threshold` replaced by `treatment_threshold` (a domain override's own threshold
    still wins, exactly as it would once the treatment is applied); 0.0 sends every routed
    request to the strong model, so "routed vs all strong" is a treatment of 0.0 when the
    control routes. `split` is the share of keys in the treatment arm. Services in
    controlplane.experiments move it draft -> running -> stopped -> concluded.
    """

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200)
    treatment_threshold = models.FloatField()
    split = models.FloatField(default=0.5)
    status = models.CharField(
        max_length=16, choices=ExperimentStatus.choices, default=ExperimentStatus.DRAFT
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    conclusion = models.TextField(blank=True, default="")
    applied_revision = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["router", "-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ExperimentStatus]),
                name="experiment_status_known",
            ),
            models.CheckConstraint(
                condition=Q(split__gte=0) & Q(split__lte=1), name="experiment_split_fraction"
            ),
            models.CheckConstraint(
                condition=Q(treatment_threshold__gte=0) & Q(treatment_threshold__lte=1),
                name="experiment_threshold_fraction",
            ),
            models.UniqueConstraint(
                fields=["router"],
                condition=Q(status="running"),
                name="one_running_experiment_per_router",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.router_id}:{self.name}"

    def document_entry(self) -> dict[str, Any]:
        """What the flags document carries while it runs (routing.experiments reads it)."""
        return {"id": self.pk, "split": self.split, "treatment_threshold": self.treatment_threshold}
