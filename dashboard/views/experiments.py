"""The router page's A/B experiments section: create, start, stop, conclude, and each
experiment's arms compared (tracking.experiment_report), loaded apart from the router panel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from controlplane import experiments
from controlplane.approvals import ApprovalRequired
from controlplane.change_requests import file_change_request
from controlplane.models import Experiment, ExperimentStatus, Router
from dashboard.views.base import HTMX_VARY, dashboard_view, router_or_404
from tracking.experiment_report import experiment_report

TEMPLATE = "dashboard/experiments.html"
SHOWN = 5  # the newest experiments; the API lists them all


def _context(request: HttpRequest, router: Router, **extra: Any) -> dict[str, Any]:
    rows = []
    for experiment in router.experiments.select_related("router")[:SHOWN]:
        report = None
        if experiment.status != ExperimentStatus.DRAFT:
            report = experiment_report(experiment=experiment)
        rows.append({"experiment": experiment, "report": report})
    return {
        "router": router,
        "rows": rows,
        "is_operator": request.is_operator,  # type: ignore[attr-defined]
        "form": request.POST if extra.get("errors") else {},
        **extra,
    }


def _section(request: HttpRequest, router: Router, **extra: Any) -> HttpResponse:
    if not request.htmx:
        return redirect("dashboard:router-detail", slug=router.slug)
    status = 400 if extra.get("errors") else 200
    return render(
        request,
        f"{TEMPLATE}#experiments-section",
        _context(request, router, **extra),
        status=status,
    )


def _number(raw: str) -> float | str:
    """A form's number, or the raw text (the service then names the field)."""
    try:
        return float(raw)
    except ValueError:
        return raw


@vary_on_headers(*HTMX_VARY)
@dashboard_view()
def router_experiments(request: HttpRequest, slug: str) -> HttpResponse:
    return _section(request, router_or_404(slug))


def _act(request: HttpRequest, router: Router, call: Callable[[], Any], done: str) -> HttpResponse:
    try:
        call()
    except ApprovalRequired as held:
        number = file_change_request(held=held).pk
        return _section(request, router, notice=f"Held for approval: change request #{number}.")
    except ValidationError as exc:
        errors = [f"{field}: {'; '.join(m)}" for field, m in exc.message_dict.items()]
        return _section(request, router, errors=errors)
    return _section(request, router, notice=done)


@require_POST
@dashboard_view(write=True)
def experiment_create(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    ends_raw = request.POST.get("ends_at", "").strip()
    ends_at = parse_datetime(ends_raw) if ends_raw else None
    if ends_raw and ends_at is None:
        return _section(request, router, errors=["ends_at: use a date and time"])
    if ends_at is not None and timezone.is_naive(ends_at):
        ends_at = timezone.make_aware(ends_at, UTC)  # the form says UTC

    def call() -> Experiment:
        return experiments.create_experiment(
            router=router,
            name=request.POST.get("name", ""),
            treatment_threshold=_number(request.POST.get("treatment_threshold", "")),
            split=_number(request.POST.get("split", "0.5")),
            ends_at=ends_at,
            actor=request.actor,  # type: ignore[attr-defined]
        )

    return _act(request, router, call, "Experiment created (draft).")


def _experiment(router: Router, experiment_id: int) -> Experiment:
    return get_object_or_404(router.experiments.select_related("router"), pk=experiment_id)


@require_POST
@dashboard_view(write=True)
def experiment_start(request: HttpRequest, slug: str, experiment_id: int) -> HttpResponse:
    router = router_or_404(slug)
    experiment = _experiment(router, experiment_id)
    return _act(
        request,
        router,
        lambda: experiments.start_experiment(experiment=experiment, actor=request.actor),  # type: ignore[attr-defined]
        f"Experiment {experiment.name!r} started.",
    )


@require_POST
@dashboard_view(write=True)
def experiment_stop(request: HttpRequest, slug: str, experiment_id: int) -> HttpResponse:
    router = router_or_404(slug)
    experiment = _experiment(router, experiment_id)
    return _act(
        request,
        router,
        lambda: experiments.stop_experiment(experiment=experiment, actor=request.actor),  # type: ignore[attr-defined]
        f"Experiment {experiment.name!r} stopped.",
    )


@require_POST
@dashboard_view(write=True)
def experiment_conclude(request: HttpRequest, slug: str, experiment_id: int) -> HttpResponse:
    router = router_or_404(slug)
    experiment = _experiment(router, experiment_id)
    apply_treatment = request.POST.get("apply_treatment") == "on"

    def call() -> Experiment:
        return experiments.conclude_experiment(
            experiment=experiment,
            actor=request.actor,  # type: ignore[attr-defined]
            conclusion=request.POST.get("conclusion", ""),
            apply_treatment=apply_treatment,
        )

    done = f"Experiment {experiment.name!r} concluded."
    if apply_treatment:
        done += f" Threshold {experiment.treatment_threshold} published as a new revision."
    return _act(request, router, call, done)
