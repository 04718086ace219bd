"""The router page's Webhooks section: endpoints, add/remove, "Send test", last deliveries."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from controlplane.models import Router
from controlplane.webhooks import selectors, services
from controlplane.webhooks.events import EVENT_TYPES
from dashboard.views.base import HTMX_VARY, dashboard_view, router_or_404

TEMPLATE = "dashboard/webhooks.html"
RECENT_ATTEMPTS = 5


def _context(request: HttpRequest, router: Router, **extra: Any) -> dict[str, Any]:
    endpoints = [
        {"endpoint": e, "attempts": selectors.attempt_list(endpoint=e, limit=RECENT_ATTEMPTS)}
        for e in selectors.endpoint_list(router=router)
    ]
    return {
        "router": router,
        "endpoints": endpoints,
        "event_types": [(t, EVENT_TYPES[t]) for t in services.SUBSCRIBABLE],
        "is_operator": request.is_operator,  # type: ignore[attr-defined]
        **extra,
    }


def _section(request: HttpRequest, router: Router, part: str, **extra: Any) -> HttpResponse:
    if not request.htmx:
        return redirect("dashboard:router-detail", slug=router.slug)
    return render(request, f"{TEMPLATE}#{part}", _context(request, router, **extra))


@vary_on_headers(*HTMX_VARY)
@dashboard_view()
def router_webhooks(request: HttpRequest, slug: str) -> HttpResponse:
    part = "webhook-list" if request.GET.get("part") == "list" else "webhooks-section"
    return _section(request, router_or_404(slug), part)


@require_POST
@dashboard_view(write=True)
def webhook_create(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    try:
        endpoint = services.create_endpoint(
            router=router,
            url=request.POST.get("url", "").strip(),
            event_types=request.POST.getlist("event_types"),
            actor=request.actor,  # type: ignore[attr-defined]
        )
    except ValidationError as exc:
        errors = [f"{field}: {', '.join(m)}" for field, m in exc.message_dict.items()]
        return _section(request, router, "webhooks-section", errors=errors)
    return _section(request, router, "webhooks-section", created=endpoint)


@require_POST
@dashboard_view(write=True)
def webhook_delete(request: HttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    router = router_or_404(slug)
    endpoint = get_object_or_404(selectors.endpoint_list(router=router), pk=endpoint_id)
    services.delete_endpoint(endpoint=endpoint, actor=request.actor)  # type: ignore[attr-defined]
    return _section(request, router, "webhook-list")


@require_POST
@dashboard_view(write=True)
def webhook_test(request: HttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    router = router_or_404(slug)
    endpoint = get_object_or_404(selectors.endpoint_list(router=router), pk=endpoint_id)
    services.send_test(endpoint=endpoint, actor=request.actor)  # type: ignore[attr-defined]
    return _section(request, router, "webhook-list", tested=endpoint.pk)
