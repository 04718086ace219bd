"""The router page: phases, kill switch, flags, config, revisions, clients, and every action."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from controlplane import selectors, services
from controlplane.approvals import ApprovalRequired
from controlplane.change_requests import file_change_request
from controlplane.models import PHASE_ORDER, ConfigRevision, Phase, Router
from controlplane.services import NothingToStepBackTo, StaleRevision
from controlplane.snapshot import Snapshot
from dashboard.forms import (
    ChangePolicyForm,
    ConfigForm,
    FlagForm,
    KillSwitchForm,
    PhaseForm,
    RollbackForm,
    ScheduleForm,
    StepBackForm,
)
from dashboard.views.base import (
    HTMX_VARY,
    dashboard_view,
    htmx_partial,
    router_or_404,
)
from routing.config import KNOWN_DOMAINS
from routing.evaluation import DOMAIN_FLAGS, FLAG_NAMES, KILLABLE_FLAGS

log = logging.getLogger(__name__)

# Clients gone longer than this drop off the router page; the API still lists them.
CLIENT_LIST_WINDOW = timedelta(hours=24)
CLIENT_LIST_LIMIT = 100
HISTORY_LIMIT = 20
STALE_MESSAGE = "Someone else changed this router; reloaded. Check the current state and retry."
# Actions that are a bare button: their errors go in the panel's banner.
BUTTON_ONLY_SLOTS = {"rollback", "step_back"}
FLAG_HELP = {
    "routellm_enabled": "Route every request through RouteLLM (the full rollout).",
    "routellm_cost_tracking": "Send routing events and costs to the control plane.",
    "routellm_performance_monitoring": "Record latency and success of each routed call.",
    "routellm_dynamic_threshold": (
        "At 100 %: a scheduled job (the calibrator) publishes threshold revisions that keep the "
        "strong share at 1 − cost_optimization_target (see Calibrate)."
    ),
    "routellm_a_b_testing": "Split traffic into A/B groups for comparison.",
    **{flag: f"Route {domain} requests through RouteLLM." for domain, flag in DOMAIN_FLAGS.items()},
}
PHASE_HELP = {
    Phase.DISABLED: "Routing off, every flag off.",
    Phase.MONITORING: "Tracking and monitoring on, routing off.",
    Phase.SINGLE_DOMAIN: "One domain routed through RouteLLM.",
    Phase.FULL: "Every request routed through RouteLLM.",
}


def _phase_steps(current: ConfigRevision) -> list[dict[str, Any]]:
    order = PHASE_ORDER[current.phase]
    return [
        {
            "value": phase.value,
            "label": phase.label,
            "help": PHASE_HELP[phase],
            "state": (
                "done"
                if PHASE_ORDER[phase] < order
                else "current"
                if PHASE_ORDER[phase] == order
                else "todo"
            ),
            "number": index + 1,
        }
        for index, phase in enumerate(Phase)
    ]


def _next_phase(current: ConfigRevision) -> str | None:
    phases = list(PHASE_ORDER)
    index = PHASE_ORDER[current.phase]
    return phases[index + 1] if index + 1 < len(phases) else None


def _history(router: Router, limit: int | None) -> tuple[list[dict[str, Any]], int]:
    revisions = list(selectors.revision_list(router=router)[: limit + 1 if limit else None])
    total = router.revisions.count() if limit else len(revisions)
    rows = []
    for index, revision in enumerate(revisions[:limit] if limit else revisions):
        previous = revisions[index + 1] if index + 1 < len(revisions) else None
        after = Snapshot.of(revision)
        if previous is not None and previous.number == revision.number - 1:
            diff = Snapshot.of(previous).diff(after)
        elif revision.number == 1:
            diff = {}
        else:
            # The previous revision fell outside the page: fetch just that one.
            before = selectors.revision_get(router=router, number=revision.number - 1)
            diff = Snapshot.of(before).diff(after)
        rows.append({"revision": revision, "diff": diff})
    return rows, total


def client_rows(router: Router, current_number: int) -> list[dict[str, Any]]:
    now = timezone.now()
    clients = selectors.client_list(
        router=router, seen_within=CLIENT_LIST_WINDOW, limit=CLIENT_LIST_LIMIT, now=now
    )
    return [
        {
            "client": c,
            "connected": c.last_seen >= now - selectors.CONNECTED_WINDOW,
            "behind": c.revision is not None and c.revision < current_number,
        }
        for c in clients
    ]


def router_context(
    request: HttpRequest,
    router: Router,
    *,
    bound: dict[str, Any] | None = None,
    error: str = "",
    notice: str = "",
) -> dict[str, Any]:
    """Everything the router page shows; `bound` keeps a failed form with its errors."""
    router.refresh_from_db(fields=["current_revision"])
    current = selectors.current_revision(router=router)
    bound = bound or {}
    number = current.number
    flags = current.flags_dict()
    all_revisions = request.GET.get("revisions") == "all"
    history, total_revisions = _history(router, None if all_revisions else HISTORY_LIMIT)

    def fresh(form_class: type, slot: str, initial: dict[str, Any], auto_id: str) -> Any:
        if slot in bound:
            return bound[slot]
        return form_class(initial={"expected_revision": number, **initial}, auto_id=auto_id)

    flag_rows = []
    for name in FLAG_NAMES:
        state = flags[name]
        flag_rows.append(
            {
                "name": name,
                "help": FLAG_HELP.get(name, ""),
                "state": state,
                "killed": current.kill_switch and name in KILLABLE_FLAGS,
                "form": fresh(FlagForm, f"flag:{name}", dict(state), f"id_flag_{name}_%s"),
            }
        )
    next_phase = _next_phase(current)
    phase_domain = current.phase_domain or KNOWN_DOMAINS[0]
    return {
        "router": router,
        "current": current,
        "current_number": number,
        "read_only": not getattr(request, "is_operator", False),
        "config": current.config,
        "phase_steps": _phase_steps(current),
        "next_phase": next_phase,
        "next_phase_label": Phase(next_phase).label if next_phase else "",
        "next_phase_help": PHASE_HELP[Phase(next_phase)] if next_phase else "",
        "domains": KNOWN_DOMAINS,
        "phase_form": fresh(
            PhaseForm, "phase", {"phase": next_phase, "domain": phase_domain}, "id_phase_%s"
        ),
        "domain_form": fresh(
            PhaseForm,
            "domain",
            {"phase": Phase.SINGLE_DOMAIN, "domain": phase_domain},
            "id_domain_%s",
        ),
        "step_back_form": fresh(StepBackForm, "step_back", {}, "id_step_back_%s"),
        "kill_form": fresh(
            KillSwitchForm,
            "kill",
            {"engaged": "false" if current.kill_switch else "true"},
            "id_kill_%s",
        ),
        "flag_rows": flag_rows,
        "config_form": (
            bound["config"]
            if "config" in bound
            else ConfigForm(initial=ConfigForm.initial_from(current.config, number))
        ),
        "history": history,
        "total_revisions": total_revisions,
        "all_revisions": all_revisions,
        "clients": client_rows(router, number),
        "change_requests": selectors.change_request_list(router=router, pending=True),
        "change_policy": selectors.change_policy(router=router),
        "scheduled_changes": selectors.scheduled_change_list(router=router),
        "actor_label": getattr(getattr(request, "actor", None), "label", ""),
        "schedule_form": bound.get("schedule") or ScheduleForm(auto_id="id_schedule_%s"),
        "policy_form": bound.get("policy")
        or ChangePolicyForm.for_policy(selectors.change_policy(router=router)),
        "error": error,
        "notice": notice,
        "bound_slot": next(iter(bound), ""),
    }


def render_router(
    request: HttpRequest, router: Router, *, status: int = 200, **kwargs: Any
) -> HttpResponse:
    template = "dashboard/router.html"
    if htmx_partial(request):
        template += "#router-panel"
    return render(request, template, router_context(request, router, **kwargs), status=status)


@vary_on_headers(*HTMX_VARY)
@dashboard_view()
def router_detail(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    if htmx_partial(request) and request.GET.get("part") == "history":
        context = router_context(request, router)
        return render(request, "dashboard/router.html#revision-history", context)
    return render_router(request, router)


@vary_on_headers("HX-Request")
@dashboard_view()
def router_clients(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    number = router.current_revision.number
    context = {"router": router, "clients": client_rows(router, number), "current_number": number}
    if request.htmx:
        return render(request, "dashboard/router.html#client-list", context)
    return redirect("dashboard:router-detail", slug=slug)


def _apply_errors(form: Any, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, field_messages in exc.message_dict.items():
            # A nested path (domain_routing_overrides.medical.threshold) marks its form field.
            top = field.split(".", 1)[0]
            target = top if top in form.fields else None
            for message in field_messages:
                form.add_error(target, message if field == target else f"{field}: {message}")
    else:
        for message in exc.messages:
            form.add_error(None, message)


def act_on_router(
    request: HttpRequest,
    router: Router,
    form: Any,
    slot: str,
    call: Callable[[dict[str, Any]], ConfigRevision],
    success: str,
) -> HttpResponse:
    """Run one service call for a dashboard form and answer with the re-rendered router panel.

    Bad input: 400 with the form's errors, nothing written. A stale revision (someone else
    published first): 409 with the fresh state. htmx swaps both (see htmx-config in base.html).
    """
    if not form.is_valid():
        return render_router(
            request,
            router,
            status=400,
            bound={slot: form},
            error="Nothing was changed: fix the highlighted field.",
        )
    try:
        result = call(form.cleaned_data)
    except ApprovalRequired as held:
        request_number = file_change_request(held=held).pk
        notice = (
            f"Held for approval: change request #{request_number} waits for another operator "
            f"({'; '.join(held.reasons)}). Nothing changed yet."
        )
        return render_router(request, router, notice=notice)
    except StaleRevision:
        return render_router(request, router, status=409, error=STALE_MESSAGE)
    except NothingToStepBackTo as exc:
        return render_router(request, router, status=409, error=f"Nothing changed: {exc}.")
    except ValidationError as exc:
        _apply_errors(form, exc)
        error = "Nothing was changed: fix the highlighted field."
        if slot in BUTTON_ONLY_SLOTS:  # no form fields to mark: say it in the banner
            error = "Nothing was changed: " + "; ".join(exc.messages) + "."
        return render_router(request, router, status=400, bound={slot: form}, error=error)
    if result.changed:
        notice = f"{success} Now at revision {result.number}."
    else:  # the service's rule: a write that changes nothing publishes no revision
        notice = f"Nothing changed; still at revision {result.number}."
    if request.htmx:
        return render_router(request, router, notice=notice)
    messages.success(request, notice)
    return redirect("dashboard:router-detail", slug=router.slug)


@require_POST
@dashboard_view(write=True)
def router_phase(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    slot = "domain" if request.POST.get("form") == "domain" else "phase"
    form = PhaseForm(request.POST, auto_id=f"id_{slot}_%s")

    def call(data: dict[str, Any]) -> ConfigRevision:
        return services.set_phase(
            router=router,
            phase=data["phase"],
            domain=data.get("domain") or None,
            actor=request.actor,
            expected_revision=data["expected_revision"],
            reason=data.get("reason", ""),
        )

    phase = Phase(form.data.get("phase")).label if form.data.get("phase") in Phase.values else ""
    return act_on_router(request, router, form, slot, call, f"Phase set to {phase}.")


@require_POST
@dashboard_view(write=True)
def router_step_back(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    form = StepBackForm(request.POST, auto_id="id_step_back_%s")

    def call(data: dict[str, Any]) -> ConfigRevision:
        return services.step_back(
            router=router,
            actor=request.actor,
            expected_revision=data["expected_revision"],
            reason=data.get("reason", ""),
        )

    return act_on_router(request, router, form, "step_back", call, "Stepped back.")


@require_POST
@dashboard_view(write=True)
def router_kill_switch(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    form = KillSwitchForm(request.POST, auto_id="id_kill_%s")

    def call(data: dict[str, Any]) -> ConfigRevision:
        return services.set_kill_switch(
            router=router,
            engaged=data["engaged"],
            reason=data.get("reason", ""),
            actor=request.actor,
            expected_revision=data["expected_revision"],
        )

    engaging = form.data.get("engaged") == "true"
    success = "Kill switch engaged: routing is off." if engaging else "Kill switch released."
    return act_on_router(request, router, form, "kill", call, success)


@require_POST
@dashboard_view(write=True)
def router_flag(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    router = router_or_404(slug)
    if name not in FLAG_NAMES:
        return render_router(request, router, status=400, error=f"Unknown flag {name!r}.")
    form = FlagForm(request.POST, auto_id=f"id_flag_{name}_%s")

    def call(data: dict[str, Any]) -> ConfigRevision:
        return services.set_flag(
            router=router,
            name=name,
            enabled=data["enabled"],
            rollout_percent=data["rollout_percent"],
            actor=request.actor,
            expected_revision=data["expected_revision"],
            reason=data.get("reason", ""),
        )

    return act_on_router(request, router, form, f"flag:{name}", call, f"Flag {name} saved.")


@require_POST
@dashboard_view(write=True)
def router_config(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    form = ConfigForm(request.POST)

    def call(data: dict[str, Any]) -> ConfigRevision:
        return services.edit_config(
            router=router,
            values=form.config_values(),
            actor=request.actor,
            expected_revision=data["expected_revision"],
            reason=data.get("reason", ""),
        )

    return act_on_router(request, router, form, "config", call, "Config saved.")


@require_POST
@dashboard_view(write=True)
def router_rollback(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    router = router_or_404(slug)
    form = RollbackForm({**request.POST.dict(), "revision": number}, auto_id=False)

    def call(data: dict[str, Any]) -> ConfigRevision:
        return services.rollback_to(
            router=router,
            number=data["revision"],
            actor=request.actor,
            expected_revision=data["expected_revision"],
            reason=data.get("reason", ""),
        )

    return act_on_router(
        request, router, form, "rollback", call, f"Rolled back to revision {number}."
    )
