"""Tracking API shapes: guardrail input and output; events' OpenAPI shape (documentation only:
events are validated by msgspec)."""

from __future__ import annotations

from rest_framework import serializers

from controlplane.api.jsontypes import JsonInput


class EventSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    timestamp = serializers.DateTimeField()
    selected_model = serializers.CharField(max_length=200)
    revision = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    domains = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True)
    routing_method = serializers.CharField(required=False, allow_null=True)
    model_tier = serializers.ChoiceField(
        ["strong", "weak", "other"], required=False, allow_null=True
    )
    strong_win_rate = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=1
    )
    threshold = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    prompt_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    completion_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    estimated_cost = serializers.FloatField(required=False, allow_null=True, min_value=0)
    latency_ms = serializers.FloatField(required=False, allow_null=True, min_value=0)
    success = serializers.BooleanField(required=False, allow_null=True, default=True)
    fallback_used = serializers.BooleanField(required=False, allow_null=True, default=False)
    error = serializers.CharField(required=False, allow_null=True)
    text_sha256 = serializers.CharField(required=False, allow_null=True)
    text_length = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    ab_group = serializers.CharField(required=False, allow_null=True)


class EventBatchSerializer(serializers.Serializer):
    events = EventSerializer(many=True, max_length=1000)


class RejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = RejectedSerializer(many=True)


class MetricsSummarySerializer(serializers.Serializer):
    router = serializers.CharField()
    period_days = serializers.IntegerField()
    total_requests = serializers.IntegerField()
    routellm_requests = serializers.IntegerField()
    routellm_usage_rate = serializers.FloatField()
    success_rate = serializers.FloatField()
    fallback_rate = serializers.FloatField()
    average_cost = serializers.FloatField()
    average_latency_ms = serializers.FloatField()
    latency_p50_ms = serializers.FloatField()
    latency_p95_ms = serializers.FloatField()
    strong_share = serializers.FloatField()
    actual_cost = serializers.FloatField()
    baseline_cost = serializers.FloatField()
    estimated_savings = serializers.FloatField()
    savings_percent = serializers.FloatField()
    unpriced_requests = serializers.IntegerField()


class SavingsReportSerializer(MetricsSummarySerializer):
    priced_requests = serializers.IntegerField()
    weak_share = serializers.FloatField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    by_day = serializers.ListField(child=serializers.DictField())
    by_domain = serializers.ListField(child=serializers.DictField())
    by_model = serializers.ListField(child=serializers.DictField())


class GuardrailInput(JsonInput):
    enabled = serializers.BooleanField(required=False)
    min_success_rate = serializers.FloatField(required=False, min_value=0, max_value=1)
    max_fallback_rate = serializers.FloatField(required=False, min_value=0, max_value=1)
    window_minutes = serializers.IntegerField(required=False, min_value=1, max_value=1440)
    min_requests = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000_000)


class GuardrailOutput(serializers.Serializer):
    enabled = serializers.BooleanField()
    min_success_rate = serializers.FloatField()
    max_fallback_rate = serializers.FloatField()
    window_minutes = serializers.IntegerField()
    min_requests = serializers.IntegerField()
    last_tripped_at = serializers.DateTimeField(allow_null=True)
