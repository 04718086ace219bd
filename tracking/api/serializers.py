"""Tracking API shapes: guardrail input and output; the events' OpenAPI shape (documentation
only: events are validated by msgspec, and their documented shape is derived from the same
`routing.events.EventIn`)."""

from __future__ import annotations

from typing import Any

import msgspec
from rest_framework import serializers

from controlplane.api.jsontypes import JsonInput
from routing.events import MAX_EVENTS_PER_BATCH, EventIn, OutcomeIn
from tracking.outcomes import MAX_OUTCOMES_PER_BATCH


def openapi_schema(struct: type) -> dict[str, Any]:
    """An OpenAPI 3.0 schema of a msgspec Struct, from the struct itself (so the documented
    shape is the validated one). msgspec writes JSON Schema: `X | None` becomes `nullable`."""

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        options = node.get("anyOf")
        if options and {"type": "null"} in options and len(options) == 2:
            (inner,) = [option for option in options if option != {"type": "null"}]
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return convert({**inner, **rest, "nullable": True})
        out = {key: convert(value) for key, value in node.items() if key != "title"}
        if "enum" in out and "type" not in out and all(isinstance(v, str) for v in out["enum"]):
            out["type"] = "string"
        return out

    document = msgspec.json.schema(struct)
    return convert(document["$defs"][struct.__name__])


EVENT_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "maxItems": MAX_EVENTS_PER_BATCH,
            "items": openapi_schema(EventIn),
        }
    },
}


OUTCOME_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["outcomes"],
    "properties": {
        "outcomes": {
            "type": "array",
            "maxItems": MAX_OUTCOMES_PER_BATCH,
            "items": openapi_schema(OutcomeIn),
        }
    },
}


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
    average_quality = serializers.FloatField(allow_null=True)  # null: no quality reported
    quality_samples = serializers.IntegerField()


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
    by_tier = serializers.ListField(child=serializers.DictField())


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
