"""The overview: every router with its phase, connected clients and today's savings."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.vary import vary_on_headers

from controlplane import selectors
from controlplane.models import Router
from dashboard.views.base import (
    HTMX_VARY,
    dashboard_view,
    htmx_partial,
)
from tracking.reports import overview_stats, savings_fraction

log = logging.getLogger(__name__)


def _overview_stats(routers: list[Router]) -> dict[int, dict[str, Any]]:
    """Today's savings per router from tracking; an empty dict (shown as —) if unavailable."""
    try:
        return overview_stats(routers=routers) or {}
    except Exception:
        # The overview is where operators start under pressure: it must load without stats.
        log.exception("overview stats failed")
        return {}


def overview_rows() -> list[dict[str, Any]]:
    routers = list(selectors.router_overview_list())
    stats = _overview_stats(routers)
    rows = []
    for router in routers:
        figures = stats.get(router.pk)
        rows.append(
            {
                "router": router,
                "stats": figures,
                # Without a request today the stats are zero defaults, not measurements: the
                # page shows "no traffic" instead of a 0.0 % success rate that reads as an outage.
                "traffic": bool(figures and figures.get("total_requests")),
                "savings_fraction": savings_fraction(figures),
            }
        )
    return rows


@vary_on_headers(*HTMX_VARY)
@dashboard_view()
def overview(request: HttpRequest) -> HttpResponse:
    context = {"rows": overview_rows(), "now": timezone.now()}
    template = "dashboard/overview.html"
    if htmx_partial(request):
        template += "#router-table"
    return render(request, template, context)
