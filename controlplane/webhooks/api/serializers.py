"""Webhook API shapes. Input is validated by the service (strict JSON types, one rule set for
the API and the dashboard); these input classes document the body for the schema."""

from __future__ import annotations

from rest_framework import serializers

from controlplane.webhooks.services import SUBSCRIBABLE


class EndpointInput(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE),
        required=False,
        help_text="Default: every event type.",
    )
    enabled = serializers.BooleanField(required=False, default=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=200)


class EndpointPatchInput(EndpointInput):
    url = serializers.URLField(max_length=2000, required=False)


class EndpointOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    event_types = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    description = serializers.CharField()
    secret_prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()


class NewEndpointOutput(EndpointOutput):
    secret = serializers.CharField(help_text="Shown only in this answer: keep it to verify.")


class AttemptOutput(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.UUIDField(source="delivery.event_id")
    event_type = serializers.CharField(source="delivery.event.type")
    delivery_id = serializers.IntegerField()
    delivery_state = serializers.CharField(source="delivery.state")
    attempt = serializers.IntegerField(source="number")
    status_code = serializers.IntegerField(allow_null=True)
    response_ms = serializers.FloatField(allow_null=True)
    error = serializers.CharField()
    succeeded = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class TestSentOutput(serializers.Serializer):
    event_id = serializers.UUIDField()
    type = serializers.CharField()
