"""The audit log page: every change, newest first, filterable."""

from __future__ import annotations

import logging
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.vary import vary_on_headers

from controlplane import selectors
from controlplane.models import Router
from dashboard.forms import (
    AuditFilterForm,
)
from dashboard.views.base import (
    HTMX_VARY,
    dashboard_view,
    htmx_partial,
)

log = logging.getLogger(__name__)

AUDIT_PAGE_SIZE = 50


@vary_on_headers(*HTMX_VARY)
@dashboard_view()
def audit(request: HttpRequest) -> HttpResponse:
    slugs = list(Router.objects.order_by("slug").values_list("slug", flat=True))
    form = AuditFilterForm(request.GET or None, routers=slugs)
    filters: dict[str, Any] = {}
    status = 200
    if form.is_bound:
        if form.is_valid():
            filters = {k: v for k, v in form.cleaned_data.items() if v}
        else:
            status = 400
    entries = selectors.audit_list(**filters)
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    template = "dashboard/audit.html"
    if htmx_partial(request):
        template += "#audit-results"
    return render(request, template, context, status=status)
