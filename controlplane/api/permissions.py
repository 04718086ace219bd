"""Who may do what: router keys read their router; viewers read more; operators write."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from controlplane.api.auth import request_role
from controlplane.models import Role

if TYPE_CHECKING:
    from rest_framework.views import APIView

RANK = {Role.ROUTER: 0, Role.VIEWER: 1, Role.OPERATOR: 2}


class _RolePermission(BasePermission):
    required: str = Role.ROUTER
    required_to_write: str = Role.OPERATOR

    def has_permission(self, request: Request, view: APIView) -> bool:
        role = request_role(request)
        if role is None:
            if request.user and request.user.is_authenticated:
                self.message = "Your account has neither the operator nor the viewer role."
            return False
        need = self.required if request.method in SAFE_METHODS else self.required_to_write
        if RANK[role] < RANK[need]:
            self.message = f"This needs an {need} key or login; yours is {role}."
            if need == Role.VIEWER:
                self.message = f"This needs a viewer or operator key or login; yours is {role}."
            return False
        return True


class IsRouterReader(_RolePermission):
    """Reads for any role (flags, events, reports); writes for operators."""

    required = Role.ROUTER


class IsViewer(_RolePermission):
    """Reads for viewers and operators (config, revisions, audit, keys); writes for operators."""

    required = Role.VIEWER


class IsOperator(_RolePermission):
    required = Role.OPERATOR
