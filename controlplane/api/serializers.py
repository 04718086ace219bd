"""Input validation for the operator API (config values use routing's shared rule set)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from controlplane.api.jsontypes import JsonInput
from controlplane.models import Phase, Role
from routing.config import KNOWN_DOMAINS


class RouterInput(JsonInput):
    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class FlagInput(JsonInput):
    enabled = serializers.BooleanField()
    rollout_percent = serializers.IntegerField(min_value=0, max_value=100, required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class PhaseInput(JsonInput):
    phase = serializers.ChoiceField(choices=Phase.values)
    domain = serializers.ChoiceField(choices=KNOWN_DOMAINS, required=False, allow_null=True)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["phase"] == Phase.SINGLE_DOMAIN and not attrs.get("domain"):
            raise serializers.ValidationError({"domain": ["single_domain needs a domain"]})
        return attrs


class KillSwitchInput(JsonInput):
    engaged = serializers.BooleanField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class RollbackInput(JsonInput):
    revision = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class StepBackInput(JsonInput):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ApiKeyInput(JsonInput):
    role = serializers.ChoiceField(choices=Role.values)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)


class ConfigInput(JsonInput):
    """Documents the config body for the schema; values are checked by routing.config."""

    enabled = serializers.BooleanField(required=False)
    router_type = serializers.ChoiceField(
        choices=["mf", "bert", "causal_llm", "sw_ranking", "random"], required=False
    )
    threshold = serializers.FloatField(required=False, min_value=0, max_value=1)
    strong_model = serializers.CharField(required=False)
    weak_model = serializers.CharField(required=False)
    fallback_enabled = serializers.BooleanField(required=False)
    max_retry_attempts = serializers.IntegerField(required=False, min_value=0)
    timeout_seconds = serializers.FloatField(required=False)
    cost_tracking_enabled = serializers.BooleanField(required=False)
    cost_optimization_target = serializers.FloatField(required=False, min_value=0, max_value=1)
    performance_monitoring_enabled = serializers.BooleanField(required=False)
    metrics_retention_days = serializers.IntegerField(required=False, min_value=1)
    domain_specific_routing = serializers.BooleanField(required=False)
    domain_routing_overrides = serializers.DictField(required=False)
    reason = serializers.CharField(required=False, allow_blank=True)
