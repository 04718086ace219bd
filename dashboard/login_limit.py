"""The failed-login limit every password login passes through: 10 per IP per minute, on Redis.

The authentication backend takes a slot (an atomic INCR) BEFORE it checks the password and
gives it back when the password is right, so a parallel burst cannot get more than the limit
checked: each attempt sees its own count, not a count read before another's hash. The dashboard
login and the admin login both authenticate through this backend; `LoginLimitMiddleware` turns
a refusal into 429 with Retry-After wherever it was raised (the dashboard renders its own page).
Redis down: the limit is skipped (fails open) so people can still log in.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from dashboard.views.base import client_ip

log = logging.getLogger(__name__)

LOGIN_FAILURE_LIMIT = 10
LOGIN_FAILURE_WINDOW = 60  # seconds, from the first failure of the window


class LoginLimited(Exception):
    """Too many failed logins from this address; not a PermissionDenied, so it reaches a view."""

    retry_after = LOGIN_FAILURE_WINDOW


def failure_key(ip: str | None) -> str:
    return f"routeplane:login-failures:{ip or 'unknown'}"


def take_attempt(ip: str | None) -> bool:
    """Count one attempt atomically; False when the address is over the limit."""
    key = failure_key(ip)
    try:
        # add() starts the window and does not extend it; INCR keeps the key's expiry.
        cache.add(key, 0, timeout=LOGIN_FAILURE_WINDOW)
        try:
            count = cache.incr(key)
        except ValueError:  # the window expired between add and incr: start a new one
            cache.add(key, 0, timeout=LOGIN_FAILURE_WINDOW)
            count = cache.incr(key)
    except Exception as exc:  # Redis down: fail open, people must still be able to log in
        log.warning("login limit skipped, cache unavailable: %s", exc.__class__.__name__)
        return True
    return count <= LOGIN_FAILURE_LIMIT


def give_back_attempt(ip: str | None) -> None:
    """A right password is not a failure: return the slot it took."""
    try:
        cache.decr(failure_key(ip))
    except Exception:  # expired meanwhile, or Redis down: nothing to give back
        pass


class LoginLimitedModelBackend(ModelBackend):
    """Django's ModelBackend behind the per-IP failed-login limit (requests only)."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if request is None:  # not an HTTP login (shell, test client's login())
            return super().authenticate(request, username, password, **kwargs)
        ip = client_ip(request)
        if not take_attempt(ip):
            raise LoginLimited()
        user = super().authenticate(request, username, password, **kwargs)
        if user is not None:
            give_back_attempt(ip)
        return user


def too_many_logins_response() -> HttpResponse:
    response = HttpResponse(
        "Too many failed logins from your address. Wait a minute, then try again.\n",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(LOGIN_FAILURE_WINDOW)
    return response


class LoginLimitMiddleware(MiddlewareMixin):
    """429 + Retry-After for a login the limit refused (the admin's, or any other form).

    A MiddlewareMixin, so it runs sync or async: under ASGI the whole chain stays async (one
    sync middleware would put every request, static files included, through a thread)."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, LoginLimited):
            return too_many_logins_response()
        return None
