"""Django admin: a read-mostly view of the control plane.

Revisions, flag states and the audit log are immutable (database triggers refuse updates), so
the admin never offers to change them; every write goes through controlplane.services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from controlplane.actors import Actor
from controlplane.models import ApiKey, AuditEntry, ConfigRevision, FlagState, Router, RouterClient
from controlplane.services import revoke_api_key


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FlagStateInline(admin.TabularInline):
    model = FlagState
    fields = ("name", "enabled", "rollout_percent")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Router)
class RouterAdmin(ReadOnlyAdmin):
    # Routers are created with create_router (revision 1 comes with them), never here.
    list_display = ("slug", "name", "current_revision_number", "phase", "kill_switch", "created_at")
    search_fields = ("slug", "name")
    readonly_fields = ("slug", "name", "created_at", "current_revision")
    list_select_related = ("current_revision",)

    @admin.display(description="revision")
    def current_revision_number(self, obj: Router) -> int | None:
        return obj.current_revision.number if obj.current_revision else None

    @admin.display(description="phase")
    def phase(self, obj: Router) -> str:
        return obj.current_revision.phase if obj.current_revision else ""

    @admin.display(description="kill switch", boolean=True)
    def kill_switch(self, obj: Router) -> bool:
        return bool(obj.current_revision and obj.current_revision.kill_switch)


@admin.register(ConfigRevision)
class ConfigRevisionAdmin(ReadOnlyAdmin):
    list_display = ("router", "number", "phase", "phase_domain", "kill_switch", "action", "actor")
    list_filter = ("phase", "kill_switch", "action", "router")
    search_fields = ("router__slug", "actor", "reason")
    list_select_related = ("router",)
    readonly_fields = (
        "router",
        "number",
        "phase",
        "phase_domain",
        "kill_switch",
        "kill_switch_reason",
        "config",
        "action",
        "actor",
        "reason",
        "restored_from",
        "created_at",
    )
    inlines = [FlagStateInline]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "router", "actor", "action", "revision_number", "source_ip")
    list_filter = ("action", "router")
    search_fields = ("actor", "action", "reason", "router__slug")
    list_select_related = ("router",)
    readonly_fields = (
        "created_at",
        "router",
        "actor",
        "action",
        "revision_number",
        "diff",
        "reason",
        "source_ip",
    )
    date_hierarchy = "created_at"


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    # Only the prefix and a hash exist; the hash is not shown either (it names the key).
    list_display = ("prefix", "router", "role", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("role", "router")
    search_fields = ("prefix", "name", "router__slug")
    list_select_related = ("router",)
    fields = (
        "prefix",
        "router",
        "role",
        "name",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    @admin.action(description="Revoke selected API keys", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        actor = Actor.for_user(request.user, request.META.get("REMOTE_ADDR"))
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            revoke_api_key(key=key, actor=actor, reason="revoked in the Django admin")
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("controlplane.change_apikey")


@admin.register(RouterClient)
class RouterClientAdmin(ReadOnlyAdmin):
    list_display = ("router", "client_id", "sdk_version", "revision", "first_seen", "last_seen")
    list_filter = ("router",)
    search_fields = ("client_id", "user_agent", "router__slug")
    list_select_related = ("router",)
    readonly_fields = (
        "router",
        "client_id",
        "sdk_version",
        "user_agent",
        "revision",
        "first_seen",
        "last_seen",
    )
