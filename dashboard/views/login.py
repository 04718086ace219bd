"""Login: Django's login view with a per-IP limit on failed attempts."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from dashboard.views.base import (
    client_ip,
)

log = logging.getLogger(__name__)

LOGIN_FAILURE_LIMIT = 10
LOGIN_FAILURE_WINDOW = 60


def _failure_key(ip: str | None) -> str:
    return f"routeplane:login-failures:{ip or 'unknown'}"


def login_failures(ip: str | None) -> int:
    try:
        return int(cache.get(_failure_key(ip)) or 0)
    except Exception as exc:  # Redis down: fail open, people must still be able to log in
        log.warning("login limit skipped, cache unavailable: %s", exc.__class__.__name__)
        return 0


def record_login_failure(ip: str | None) -> None:
    key = _failure_key(ip)
    try:
        # The window starts at the first failure; add() does not extend it.
        cache.add(key, 0, timeout=LOGIN_FAILURE_WINDOW)
        cache.incr(key)
    except Exception as exc:
        log.warning("login failure not counted, cache unavailable: %s", exc.__class__.__name__)


class RoutePlaneLoginView(LoginView):
    """Django's login, refusing an IP after 10 failed attempts within a minute."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if login_failures(client_ip(request)) >= LOGIN_FAILURE_LIMIT:
            form = self.get_form_class()(request)
            context = self.get_context_data(form=form, locked_out=True)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(LOGIN_FAILURE_WINDOW)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        record_login_failure(client_ip(self.request))
        return self.render_to_response(self.get_context_data(form=form), status=400)
