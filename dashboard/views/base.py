"""What every dashboard view shares: login and role checks, htmx partials, the router lookup."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django_htmx.http import HttpResponseClientRedirect

from controlplane import selectors
from controlplane.actors import Actor
from controlplane.api.auth import user_role
from controlplane.models import Role, Router

log = logging.getLogger(__name__)

VIEWER_MESSAGE = "Viewers cannot change routers."


# Pages answer htmx with a partial, so caches must key on these headers; a history restore
# carries HX-Request too but needs the full page (see htmx_partial).
HTMX_VARY = ("HX-Request", "HX-History-Restore-Request")


def htmx_partial(request: HttpRequest) -> bool:
    """True when an htmx request wants just the swapped part of a page.

    After Back past an hx-push-url navigation, htmx 2 re-fetches the page when its history cache
    misses (HX-History-Restore-Request, with HX-Request) and swaps the answer in for the whole
    body: a partial there would leave the operator on a page with no header or navigation.
    """
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def dashboard_view(*, write: bool = False) -> Callable:
    """Login and a role are required; writes need the operator role (403 for viewers)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                if getattr(request, "htmx", False):
                    # A swap target is no place for a login page: send the whole tab there.
                    return HttpResponseClientRedirect(f"/login/?next={request.path}")
                return redirect_to_login(request.get_full_path())
            role = user_role(request.user)
            request.role = role  # type: ignore[attr-defined]
            request.is_operator = role == Role.OPERATOR  # type: ignore[attr-defined]
            if role is None:
                return render(request, "dashboard/no_role.html", status=403)
            if write and role != Role.OPERATOR:
                return render(
                    request, "dashboard/forbidden.html", {"message": VIEWER_MESSAGE}, status=403
                )
            request.actor = Actor.for_user(request.user, client_ip(request))  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def router_or_404(slug: str) -> Router:
    return get_object_or_404(selectors.router_list(), slug=slug)
