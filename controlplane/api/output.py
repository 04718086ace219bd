"""What the operator API answers with; the same serializers document the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers

from controlplane.models import (
    ApiKey,
    AuditEntry,
    ChangeRequest,
    ChangeRequestStatus,
    ConfigRevision,
    Router,
    RouterClient,
)


class RevisionOutput(serializers.Serializer):
    revision = serializers.IntegerField(source="number")
    phase = serializers.CharField()
    phase_domain = serializers.SerializerMethodField()
    kill_switch = serializers.BooleanField()
    kill_switch_reason = serializers.CharField()
    action = serializers.CharField()
    actor = serializers.CharField()
    reason = serializers.CharField()
    restored_from = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    config = serializers.DictField()
    flags = serializers.SerializerMethodField()

    def get_phase_domain(self, revision: ConfigRevision) -> str | None:
        return revision.phase_domain or None

    def get_flags(self, revision: ConfigRevision) -> dict[str, dict[str, Any]]:
        return revision.flags_dict()


class RouterOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    revision = serializers.IntegerField(source="current_revision.number", allow_null=True)
    phase = serializers.CharField(source="current_revision.phase", allow_null=True)
    phase_domain = serializers.SerializerMethodField()
    kill_switch = serializers.BooleanField(source="current_revision.kill_switch")

    def get_phase_domain(self, router: Router) -> str | None:
        return router.current_revision.phase_domain or None


class AuditOutput(serializers.Serializer):
    id = serializers.IntegerField()
    router = serializers.CharField(source="router.slug", allow_null=True)
    actor = serializers.CharField()
    action = serializers.CharField()
    revision = serializers.IntegerField(source="revision_number", allow_null=True)
    diff = serializers.DictField()
    reason = serializers.CharField()
    source_ip = serializers.IPAddressField(allow_null=True)
    created_at = serializers.DateTimeField()


class AuditPageOutput(serializers.Serializer):
    """GET audit/ is paginated (DRF's page shape)."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AuditOutput(many=True)


class ApiKeyOutput(serializers.Serializer):
    prefix = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class NewApiKeyOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The API key itself. Shown once; only a hash is kept.")


class ClientOutput(serializers.Serializer):
    client_id = serializers.CharField()
    sdk_version = serializers.CharField()
    user_agent = serializers.CharField()
    revision = serializers.IntegerField(allow_null=True)
    behind = serializers.SerializerMethodField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()

    def get_behind(self, client: RouterClient) -> bool:
        current = self.context.get("current_revision")
        return client.revision is not None and current is not None and client.revision < current


class RevisionDiffOutput(serializers.Serializer):
    revision = serializers.IntegerField()
    previous = serializers.IntegerField(allow_null=True)
    changes = serializers.DictField(help_text='{"config.threshold": {"before", "after"}, …}')


class FlagStateOutput(serializers.Serializer):
    enabled = serializers.BooleanField()
    rollout_percent = serializers.IntegerField(min_value=0, max_value=100)


class FlagsDocumentOutput(serializers.Serializer):
    router = serializers.CharField()
    revision = serializers.IntegerField()
    phase = serializers.CharField()
    phase_domain = serializers.CharField(allow_null=True)
    kill_switch = serializers.BooleanField()
    config = serializers.DictField(help_text="The RouteLLMConfig fields.")
    flags = serializers.DictField(child=FlagStateOutput(), help_text="Raw flag states by name.")


class ErrorOutput(serializers.Serializer):
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class WriteOutput(RevisionOutput):
    """A write's answer: the revision it published, or the current one when nothing changed."""

    changed = serializers.BooleanField()


def revision_dict(revision: ConfigRevision) -> dict[str, Any]:
    return RevisionOutput(revision).data


def write_dict(revision: ConfigRevision) -> dict[str, Any]:
    return WriteOutput(revision).data


def router_dict(router: Router) -> dict[str, Any]:
    return RouterOutput(router).data


def audit_dict(entry: AuditEntry) -> dict[str, Any]:
    return AuditOutput(entry).data


def api_key_dict(key: ApiKey) -> dict[str, Any]:
    return ApiKeyOutput(key).data


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "controlplane.api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A router, viewer or operator API key: `Authorization: Bearer rp_…`",
        }


class ChangeRequestOutput(serializers.Serializer):
    id = serializers.IntegerField()
    router = serializers.CharField(source="router.slug")
    status = serializers.CharField()
    action = serializers.CharField()
    base_revision = serializers.IntegerField()
    stale = serializers.SerializerMethodField()
    diff = serializers.DictField()
    reasons = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField()
    requested_by = serializers.CharField()
    requested_at = serializers.DateTimeField()
    decided_by = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField()
    applied_revision = serializers.IntegerField(allow_null=True)

    def get_stale(self, request: ChangeRequest) -> bool:
        """A pending request whose base is no longer current cannot be approved."""
        current = request.router.current_revision
        return request.status == ChangeRequestStatus.PENDING and (
            current is None or current.number != request.base_revision
        )


def change_request_dict(request: ChangeRequest) -> dict[str, Any]:
    return dict(ChangeRequestOutput(request).data)
