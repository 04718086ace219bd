"""The router page's change requests, change policy and scheduled changes (operators act here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from controlplane import change_requests, scheduled_changes
from controlplane.models import ChangeRequest, Router, ScheduledChange
from controlplane.services import StaleRevision
from dashboard.forms import ChangePolicyForm, DecisionForm, ScheduleForm
from dashboard.views.base import dashboard_view, router_or_404
from dashboard.views.routers import render_router


def _outcome(
    request: HttpRequest, router: Router, call: Callable[[], str], *, slot: str = "", form=None
) -> HttpResponse:
    """Run one service call and re-render the router panel with its notice or error."""
    try:
        notice = call()
    except PermissionDenied as exc:
        return render_router(request, router, status=403, error=f"Nothing changed: {exc}.")
    except StaleRevision as exc:
        error = (
            f"Nothing changed: the router moved on to revision {exc.current} since this request "
            f"was made on revision {exc.expected}. Reject it and make the change again."
        )
        return render_router(request, router, status=409, error=error)
    except ValidationError as exc:
        bound = {slot: form} if slot else None
        if form is not None and hasattr(exc, "error_dict"):
            for field, messages in exc.message_dict.items():
                name = field.removeprefix("params.")
                form.add_error(name if name in form.fields else None, messages)
        error = "Nothing changed: " + "; ".join(exc.messages) + "."
        return render_router(request, router, status=400, bound=bound, error=error)
    return render_router(request, router, notice=notice)


def _invalid(request: HttpRequest, router: Router, slot: str, form: Any) -> HttpResponse:
    return render_router(
        request,
        router,
        status=400,
        bound={slot: form},
        error="Nothing was changed: fix the highlighted field.",
    )


@require_POST
@dashboard_view(write=True)
def router_change_approve(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    router = router_or_404(slug)
    held = get_object_or_404(ChangeRequest, router=router, pk=pk)
    form = DecisionForm(request.POST)
    reason = form.cleaned_data.get("reason", "") if form.is_valid() else ""

    def call() -> str:
        _, revision = change_requests.approve_change_request(
            change_request=held, actor=request.actor, reason=reason
        )
        return f"Change request #{held.pk} approved: now at revision {revision.number}."

    return _outcome(request, router, call)


@require_POST
@dashboard_view(write=True)
def router_change_reject(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    router = router_or_404(slug)
    held = get_object_or_404(ChangeRequest, router=router, pk=pk)
    form = DecisionForm(request.POST)
    reason = form.cleaned_data.get("reason", "") if form.is_valid() else ""

    def call() -> str:
        change_requests.reject_change_request(
            change_request=held, actor=request.actor, reason=reason
        )
        return f"Change request #{held.pk} rejected."

    return _outcome(request, router, call)


@require_POST
@dashboard_view(write=True)
def router_change_policy(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    form = ChangePolicyForm(request.POST, auto_id="id_policy_%s")
    if not form.is_valid():
        return _invalid(request, router, "policy", form)

    def call() -> str:
        change_requests.set_change_policy(router=router, actor=request.actor, **form.cleaned_data)
        return "Change policy saved."

    return _outcome(request, router, call, slot="policy", form=form)


@require_POST
@dashboard_view(write=True)
def router_schedule(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    form = ScheduleForm(request.POST, auto_id="id_schedule_%s")
    if not form.is_valid():
        return _invalid(request, router, "schedule", form)

    def call() -> str:
        change = scheduled_changes.schedule_change(
            router=router,
            action=form.cleaned_data["action"],
            params=form.params(),
            run_at=form.cleaned_data["run_at"],
            reason=form.cleaned_data.get("reason", ""),
            actor=request.actor,
        )
        waits = ""
        if change.status == "awaiting_approval":
            waits = " It waits for another operator's approval."
        return f"Scheduled change #{change.pk} for {change.run_at:%Y-%m-%d %H:%M} UTC.{waits}"

    return _outcome(request, router, call, slot="schedule", form=form)


@require_POST
@dashboard_view(write=True)
def router_schedule_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    router = router_or_404(slug)
    change = get_object_or_404(ScheduledChange, router=router, pk=pk)

    def call() -> str:
        scheduled_changes.cancel_scheduled_change(change=change, actor=request.actor)
        return f"Scheduled change #{change.pk} cancelled."

    return _outcome(request, router, call)


@require_POST
@dashboard_view(write=True)
def router_schedule_approve(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    router = router_or_404(slug)
    change = get_object_or_404(ScheduledChange, router=router, pk=pk)

    def call() -> str:
        scheduled_changes.approve_scheduled_change(change=change, actor=request.actor)
        return f"Scheduled change #{change.pk} approved: it runs at its time."

    return _outcome(request, router, call)
