"""Control-plane data: routers, immutable config revisions, flag states, audit log, API keys."""

from __future__ import annotations

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
        return {
            state.name: {"enabled": state.enabled, "rollout_percent": state.rollout_percent}
            for state in sorted(self.flag_states.all(), key=lambda s: FLAG_NAMES.index(s.name))
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
