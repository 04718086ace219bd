"""The router page's guardrail: its settings form (tracking.guardrails.set_guardrail) and the
banner shown while a trip's step-back is the current revision. Both load apart from the router
panel (one line each in router.html)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from controlplane.models import Router
from dashboard.views.base import HTMX_VARY, dashboard_view, router_or_404
from tracking.guardrails import guardrail_for, set_guardrail, tripped_guardrail

TEMPLATE = "dashboard/guardrail.html"


class GuardrailForm(forms.Form):
    enabled = forms.BooleanField(required=False)
    min_success_rate = forms.FloatField(min_value=0, max_value=1, label="Min success rate (0–1)")
    max_fallback_rate = forms.FloatField(min_value=0, max_value=1, label="Max fallback rate (0–1)")
    window_minutes = forms.IntegerField(min_value=1, max_value=1440, label="Window (minutes)")
    min_requests = forms.IntegerField(min_value=1, label="Min requests")


def _context(request: HttpRequest, router: Router, form: GuardrailForm | None = None,
             **extra: Any) -> dict[str, Any]:  # fmt: skip
    guardrail = guardrail_for(router=router)
    if form is None:
        form = GuardrailForm(
            initial={name: getattr(guardrail, name) for name in GuardrailForm.base_fields},
            auto_id="id_guardrail_%s",
        )
    return {
        "router": router,
        "guardrail": guardrail,
        "saved": guardrail.pk is not None,
        "form": form,
        "is_operator": request.is_operator,  # type: ignore[attr-defined]
        **extra,
    }


@vary_on_headers(*HTMX_VARY)
@dashboard_view()
def router_guardrail(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    if not request.htmx:
        return redirect("dashboard:router-detail", slug=slug)
    return render(request, f"{TEMPLATE}#guardrail-section", _context(request, router))


@vary_on_headers(*HTMX_VARY)
@dashboard_view()
def router_guardrail_banner(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    if not request.htmx:
        return redirect("dashboard:router-detail", slug=slug)
    context = {"router": router, "tripped": tripped_guardrail(router=router)}
    return render(request, f"{TEMPLATE}#guardrail-banner", context)


@require_POST
@dashboard_view(write=True)
def router_guardrail_save(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    form = GuardrailForm(request.POST, auto_id="id_guardrail_%s")
    status, notice = 400, ""
    if form.is_valid():
        try:
            set_guardrail(router=router, actor=request.actor, **form.cleaned_data)  # type: ignore[attr-defined]
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            status, notice, form = 200, "Guardrail saved.", None
    if not request.htmx:
        return redirect("dashboard:router-detail", slug=slug)
    context = _context(request, router, form, notice=notice)
    return render(request, f"{TEMPLATE}#guardrail-section", context, status=status)
