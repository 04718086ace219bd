"""Tracking data: routing events, model prices, hourly and daily rollups, stored daily reports.

Events are written only by `tracking.ingest.ingest_events` (COPY + INSERT … ON CONFLICT), never
through the ORM, so the table keeps just the indexes the hot path can afford: the primary key
(router, event_id) that makes a retried batch count once, (router, timestamp) for reports and
retention, and a BRIN index on `ingest_xid` for the not-yet-rolled-up tail.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone

from controlplane.models import Router

# Latency histogram: bucket i holds latencies in (RATIO**(i-1), RATIO**i] ms (bucket 0: <= 1 ms),
# the last bucket everything above. Percentiles read from it are within ~10 % of the truth.
LATENCY_BUCKET_RATIO = 1.2
LATENCY_BUCKETS = 64


class ModelTier(models.TextChoices):
    STRONG = "strong", "Strong"
    WEAK = "weak", "Weak"
    OTHER = "other", "Other"


class Event(models.Model):
    """One routing decision reported by a router. Raw prompt text is never stored."""

    pk = models.CompositePrimaryKey("router", "event_id")
    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="+")
    event_id = models.UUIDField()
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    # The inserting transaction's id: rows below the rollup watermark are final (see rollups).
    ingest_xid = models.BigIntegerField()
    revision = models.PositiveIntegerField(null=True, blank=True)
    domains = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # Breakdown rule: the first listed domain, lower-cased; "general" when the list is empty.
    domain = models.CharField(max_length=64)
    routing_method = models.CharField(max_length=64, blank=True, default="")
    selected_model = models.CharField(max_length=200)
    model_tier = models.CharField(max_length=8, blank=True, default="")
    strong_win_rate = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    prompt_tokens = models.BigIntegerField(null=True, blank=True)
    completion_tokens = models.BigIntegerField(null=True, blank=True)
    estimated_cost = models.FloatField(null=True, blank=True)
    # Null cost = unpriced (unknown model and no estimate): never counted as $0.
    cost = models.FloatField(null=True, blank=True)
    baseline_cost = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    success = models.BooleanField(default=True)
    fallback_used = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    text_sha256 = models.CharField(max_length=64, blank=True, default="")
    text_length = models.PositiveIntegerField(null=True, blank=True)
    ab_group = models.CharField(max_length=64, blank=True, default="")
    # The call's outcome (tracking.outcome_ingest), at most one per event: its 0-1 quality score,
    # when it arrived, and a SHA-256 of its values, which tells a retry from a conflicting one.
    quality = models.FloatField(null=True, blank=True)
    outcome_at = models.DateTimeField(null=True, blank=True)
    outcome_digest = models.BinaryField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["router", "timestamp"], name="event_router_time"),
            BrinIndex(fields=["ingest_xid"], name="event_ingest_xid_brin", autosummarize=True),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(model_tier__in=["", "strong", "weak", "other"]),
                name="event_model_tier_known",
            ),
            models.CheckConstraint(
                condition=Q(quality__isnull=True) | (Q(quality__gte=0) & Q(quality__lte=1)),
                name="event_quality_fraction",
            ),
        ]


class ModelPrice(models.Model):
    """A list price, in USD per token, from `effective_from` on. `model` may be a glob pattern."""

    model = models.CharField(max_length=200, help_text="exact model name, or a pattern with *")
    input_per_token = models.DecimalField(max_digits=20, decimal_places=15)
    output_per_token = models.DecimalField(max_digits=20, decimal_places=15)
    effective_from = models.DateTimeField()
    source = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    # Set once events since effective_from have been re-priced with this row.
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="price_once_per_time"),
            models.CheckConstraint(
                condition=Q(input_per_token__gte=0) & Q(output_per_token__gte=0),
                name="price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} from {self.effective_from:%Y-%m-%d}"


class RollupSums(models.Model):
    """The sums both rollup tables keep per router/period/domain/model/tier/A-B group."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="+")
    domain = models.CharField(max_length=64)
    model = models.CharField(max_length=200)
    tier = models.CharField(max_length=8, blank=True, default="")
    ab_group = models.CharField(max_length=64, blank=True, default="")
    requests = models.BigIntegerField(default=0)
    successes = models.BigIntegerField(default=0)
    fallbacks = models.BigIntegerField(default=0)
    routellm = models.BigIntegerField(default=0)
    priced = models.BigIntegerField(default=0)
    unpriced = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0)
    baseline = models.FloatField(default=0)
    latency_count = models.BigIntegerField(default=0)
    latency_sum = models.FloatField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    quality_count = models.BigIntegerField(default=0)
    quality_sum = models.FloatField(default=0)

    class Meta:
        abstract = True


class EventRollup(RollupSums):
    """Hourly sums per router/domain/model/tier/A-B group, for events below the watermark."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["router", "hour", "domain", "model", "tier", "ab_group"],
                name="rollup_key",
            )
        ]


class LatencyRollup(models.Model):
    """Hourly latency histogram per router (kept apart from EventRollup so that a report merges
    one array per hour, not one per hour x domain x model x tier x group)."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    hist = ArrayField(models.BigIntegerField(), size=LATENCY_BUCKETS)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["router", "hour"], name="latency_rollup_key")
        ]


class EventDailyRollup(RollupSums):
    """Daily sums (UTC days) with the EventRollup key, kept equal to the sum of that day's hourly
    rows by the same rollup job, so a long report reads one row per day instead of 24."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["router", "day", "domain", "model", "tier", "ab_group"],
                name="daily_rollup_key",
            )
        ]


class LatencyDailyRollup(models.Model):
    """Daily latency histogram per router: the sum of that day's LatencyRollup rows."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    hist = ArrayField(models.BigIntegerField(), size=LATENCY_BUCKETS)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["router", "day"], name="latency_daily_rollup_key")
        ]


class RollupWatermark(models.Model):
    """One row: every event with ingest_xid below `xid` is in the rollups, none above."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    xid = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="watermark_single_row")]


class SavingsReport(models.Model):
    """The savings report of one UTC day, stored by the daily task (kept past event retention)."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="savings_reports")
    day = models.DateField()
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["router", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["router", "day"], name="savings_report_once_per_day")
        ]


class Guardrail(models.Model):
    """Automatic step back: when a routed phase hurts success or fallback rates, undo it.

    Checked every minute (tracking.tasks.check_guardrails) over the events since the
    current revision went live, at most `window_minutes` back.
    """

    router = models.OneToOneField(Router, on_delete=models.CASCADE, related_name="guardrail")
    enabled = models.BooleanField(default=False)
    min_success_rate = models.FloatField(default=0.95)
    max_fallback_rate = models.FloatField(default=0.25)
    window_minutes = models.PositiveIntegerField(default=15)
    min_requests = models.PositiveIntegerField(default=100)
    last_tripped_at = models.DateTimeField(null=True, blank=True)
    # What the last trip saw (the dashboard's banner shows it while its step-back is current).
    tripped_revision = models.PositiveIntegerField(null=True, blank=True)
    tripped_success_rate = models.FloatField(null=True, blank=True)
    tripped_fallback_rate = models.FloatField(null=True, blank=True)
    tripped_requests = models.PositiveIntegerField(null=True, blank=True)
    tripped_since = models.DateTimeField(null=True, blank=True)
    tripped_reason = models.TextField(blank=True, default="")

    class Meta:
        db_table = "controlplane_guardrail"  # created by the controlplane app's migrations
        constraints = [
            models.CheckConstraint(
                condition=Q(min_success_rate__gte=0) & Q(min_success_rate__lte=1),
                name="guardrail_success_rate_fraction",
            ),
            models.CheckConstraint(
                condition=Q(max_fallback_rate__gte=0) & Q(max_fallback_rate__lte=1),
                name="guardrail_fallback_rate_fraction",
            ),
            models.CheckConstraint(condition=Q(window_minutes__gte=1), name="guardrail_window"),
        ]


class RevisionRollup(models.Model):
    """Hourly sums per router and config revision (0: events that named none), for the
    before/after-per-revision report (tracking.revision_report). Kept apart from EventRollup so
    that table's key and its reports stay as they are; a revision rarely changes within an
    hour, so this is about one row per router-hour."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    revision = models.PositiveIntegerField(default=0)
    requests = models.BigIntegerField(default=0)
    successes = models.BigIntegerField(default=0)
    fallbacks = models.BigIntegerField(default=0)
    strong = models.BigIntegerField(default=0)
    priced = models.BigIntegerField(default=0)
    unpriced = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0)
    baseline = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["router", "hour", "revision"], name="revision_rollup_key"
            )
        ]


# Win-rate histogram: bucket b holds strong win rates in [b / WINRATE_BUCKETS, (b + 1) / ...),
# the last bucket also holds 1.0. A threshold then moves calls between buckets in 0.001 steps.
WINRATE_BUCKETS = 1000


class WinRateBucket(models.Model):
    """Daily sums of the events with a strong win rate, per domain, tier, bucket and side.

    `above` is the routing side the event was on at its own threshold (win rate >= threshold),
    so a replay at another threshold knows exactly which calls it moves (tracking.whatif).
    Folded by the rollup job (tracking.winrates), like the other rollups.
    """

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    domain = models.CharField(max_length=64)
    tier = models.CharField(max_length=8, blank=True, default="")
    above = models.BooleanField()
    bucket = models.SmallIntegerField()
    requests = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0)
    baseline = models.FloatField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    quality_count = models.BigIntegerField(default=0)
    quality_sum = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["router", "day", "domain", "tier", "above", "bucket"],
                name="winrate_bucket_key",
            ),
            models.CheckConstraint(
                condition=Q(bucket__gte=0) & Q(bucket__lt=WINRATE_BUCKETS),
                name="winrate_bucket_range",
            ),
        ]


class CalibrationRun(models.Model):
    """One dynamic-threshold run for one router: what it found and what it published."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="calibration_runs")
    ran_at = models.DateTimeField(default=timezone.now)
    # published | unchanged | skipped | held (the change policy wants an approval)
    outcome = models.CharField(max_length=16)
    revision = models.PositiveIntegerField(null=True, blank=True)
    summary = models.TextField(blank=True, default="")
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["router", "-ran_at"]
        indexes = [models.Index(fields=["router", "-ran_at"], name="calibration_run_latest")]
