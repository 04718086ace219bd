"""The router page's "Calibrate" panel: proposal, apply, what-if replay, dynamic threshold.

The router page includes templates/partials/_calibration.html, a shell that loads this panel
through htmx after the page, so the router page's own view and queries stay as they were.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from controlplane.approvals import ApprovalRequired
from controlplane.change_requests import file_change_request
from controlplane.services import StaleRevision
from dashboard.views.base import HTMX_VARY, dashboard_view, router_or_404
from routing.config import KNOWN_DOMAINS
from tracking.calibration import MAX_DAYS, apply_calibration, calibration, current_threshold
from tracking.dynamic_threshold import dynamic_threshold_status
from tracking.whatif import what_if

TEMPLATE = "partials/_calibration.html"


class CalibrationForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=MAX_DAYS, required=False)
    target_strong_share = forms.FloatField(min_value=0, max_value=1, required=False)
    domain = forms.ChoiceField(choices=[("", "All calls"), *[(d, d) for d in KNOWN_DOMAINS]],
                               required=False)  # fmt: skip
    threshold = forms.FloatField(min_value=0, max_value=1, required=False)
    expected_revision = forms.IntegerField(min_value=1, required=False)

    def window(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "days": data.get("days") or settings.ROUTEPLANE_CALIBRATION_DAYS,
            "target_strong_share": data.get("target_strong_share"),
            "domain": data.get("domain") or None,
        }


def _context(router: Any, form: CalibrationForm, **extra: Any) -> dict[str, Any]:
    window = form.window() if form.is_valid() else CalibrationForm({}).window()
    result = calibration(router=router, **window)
    threshold = form.cleaned_data.get("threshold") if form.is_valid() else None
    if threshold is None:
        threshold = result.proposed_threshold or result.current_threshold
    replay = what_if(router=router, threshold=threshold, days=window["days"],
                     domain=window["domain"])  # fmt: skip
    return {
        "router": router,
        "form": form,
        "window": window,
        "calibration": result,
        "whatif": replay,
        "whatif_threshold": threshold,
        "current_number": router.current_revision.number,
        "dynamic": dynamic_threshold_status(router=router),
        **extra,
    }


@vary_on_headers(*HTMX_VARY)
@dashboard_view()
def router_calibration(request: HttpRequest, slug: str) -> HttpResponse:
    """The whole panel (loaded after the router page, and re-read when its window changes)."""
    router = router_or_404(slug)
    form = CalibrationForm(request.GET)
    return render(request, f"{TEMPLATE}#calibration-panel", _context(router, form))


@vary_on_headers(*HTMX_VARY)
@dashboard_view()
def router_what_if(request: HttpRequest, slug: str) -> HttpResponse:
    """Just the prediction, for the threshold slider."""
    router = router_or_404(slug)
    form = CalibrationForm(request.GET)
    valid = form.is_valid()
    window = form.window() if valid else CalibrationForm({}).window()
    threshold = form.cleaned_data.get("threshold") if valid else None
    if threshold is None:  # an empty or out-of-range input: today's threshold
        threshold = current_threshold(router.current_revision.config, window["domain"])
    replay = what_if(router=router, threshold=threshold, days=window["days"],
                     domain=window["domain"])  # fmt: skip
    return render(request, f"{TEMPLATE}#what-if-result", {"whatif": replay})


@require_POST
@dashboard_view(write=True)
def router_calibration_apply(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    form = CalibrationForm(request.POST)
    page = reverse("dashboard:router-detail", args=[slug])
    error = ""
    if not form.is_valid():
        error = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    else:
        try:
            revision, result = apply_calibration(
                router=router,
                actor=request.actor,  # type: ignore[attr-defined]
                expected_revision=form.cleaned_data.get("expected_revision"),
                **form.window(),
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        except StaleRevision:
            error = "Someone else changed this router; reloaded. Check the proposal and retry."
        except ApprovalRequired as held:
            file_change_request(held=held)
            messages.info(request, "The threshold change waits for a second operator's approval.")
            return HttpResponseClientRedirect(page) if request.htmx else redirect(page)
        else:
            where = f" for {result.domain}" if result.domain else ""
            messages.success(
                request,
                f"Threshold{where} set to {result.proposed_threshold} "
                f"(revision {revision.number}).",
            )
            return HttpResponseClientRedirect(page) if request.htmx else redirect(page)
    if not request.htmx:
        messages.error(request, error)
        return redirect(page)
    router.refresh_from_db()
    context = _context(router, CalibrationForm(request.POST), error=error)
    return render(request, f"{TEMPLATE}#calibration-panel", context, status=409 if error else 200)
