"""API keys (Bearer rp_…) and the role a request acts with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from controlplane.actors import Actor
from controlplane.models import ApiKey, Role, Router
from controlplane.selectors import api_key_for_raw

# last_used_at is written at most this often per key, so a busy key costs no write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass
class KeyUser:
    """request.user for a key: authenticated, named by its prefix, not a Django user."""

    key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    pk = None
    id = None

    def get_username(self) -> str:
        return f"key:{self.key.prefix}"

    def __str__(self) -> str:
        return self.get_username()


def bearer_token(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[KeyUser, ApiKey] | None:
        raw = bearer_token(request.META.get("HTTP_AUTHORIZATION", ""))
        if raw is None:
            return None
        key = api_key_for_raw(raw_key=raw)
        if key is None:
            raise AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return KeyUser(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="routeplane"'


def user_role(user: object) -> str | None:
    """The dashboard role of a Django user: operator, viewer or none."""
    if not getattr(user, "is_authenticated", False) or isinstance(user, KeyUser):
        return None
    if user.is_superuser:  # type: ignore[attr-defined]
        return Role.OPERATOR
    names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
    if Role.OPERATOR in names:
        return Role.OPERATOR
    if Role.VIEWER in names:
        return Role.VIEWER
    return None


def request_role(request: Request) -> str | None:
    if isinstance(request.auth, ApiKey):
        return request.auth.role
    return user_role(request.user)


def request_router_scope(request: Request) -> int | None:
    """The one router a key may act on (None: a dashboard user acts on every router)."""
    if isinstance(request.auth, ApiKey):
        return request.auth.router_id
    return None


def client_ip(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def request_actor(request: Request) -> Actor:
    if isinstance(request.auth, ApiKey):
        return Actor.for_key(request.auth, client_ip(request))
    return Actor.for_user(request.user, client_ip(request))


def may_act_on(request: Request, router: Router) -> bool:
    scope = request_router_scope(request)
    return scope is None or scope == router.pk
