"""The savings page: savings, quality and health per day, domain and model; CSV; recompute."""

from __future__ import annotations

import csv
import logging
import math
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from dashboard.views.base import (
    HTMX_VARY,
    dashboard_view,
    htmx_partial,
    router_or_404,
)
from tracking import reports, tasks
from tracking.revision_report import revision_breakdown

log = logging.getLogger(__name__)

PERIODS = (1, 7, 30, 90)
DEFAULT_PERIOD = 7
TERMINAL_STATES = {"SUCCESS", "FAILURE", "REVOKED"}
# The report has no latency percentiles per day (only for the whole period), so the daily rows
# carry the day's average latency rather than two always-empty percentile columns.
CSV_COLUMNS = (
    "day",
    "total_requests",
    "routellm_requests",
    "actual_cost",
    "baseline_cost",
    "estimated_savings",
    "savings_percent",
    "strong_share",
    "success_rate",
    "fallback_rate",
    "average_latency_ms",
    "unpriced_requests",
    "average_quality",
    "quality_samples",
)
# Figures that mean nothing on a day without requests: blank there, not a misleading 0.
# (average_quality is already null on a day without a quality score.)
PER_REQUEST_COLUMNS = frozenset(
    {"savings_percent", "strong_share", "success_rate", "fallback_rate", "average_latency_ms"}
)
# The headline figures of the whole period, which do have latency percentiles.
SUMMARY_FIELDS = (*CSV_COLUMNS[1:], "latency_p50_ms", "latency_p95_ms")
SUMMARY_PER_REQUEST = PER_REQUEST_COLUMNS | {"latency_p50_ms", "latency_p95_ms"}
# Key names the tracking engineer may use for the same figure; the first present wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "day": ("day", "date"),
    "total_requests": ("total_requests", "requests"),
    "actual_cost": ("actual_cost", "cost"),
    "baseline_cost": ("baseline_cost", "baseline"),
    "estimated_savings": ("estimated_savings", "savings"),
    "latency_p50_ms": ("latency_p50_ms", "p50_latency_ms", "latency_p50"),
    "latency_p95_ms": ("latency_p95_ms", "p95_latency_ms", "latency_p95"),
}


def pick(row: dict[str, Any] | None, name: str, default: Any = None) -> Any:
    if not row:
        return default
    for key in ALIASES.get(name, (name,)):
        if key in row and row[key] is not None:
            return row[key]
    latency = row.get("latency_ms")
    if isinstance(latency, dict) and name.startswith("latency_p"):
        return latency.get(name.removeprefix("latency_").removesuffix("_ms"), default)
    return default


def period_from(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", DEFAULT_PERIOD))
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


# --- Charts: server-rendered SVG, no JavaScript --------------------------------------------

CHART_W, CHART_H = 640, 200
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 12, 28


def _scale_max(values: list[float]) -> float:
    top = max(values or [0])
    if top <= 0:
        return 1.0
    # A round number just above the top, so the axis reads 0, half, max cleanly.
    magnitude = 10 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= top:
            return float(step * magnitude)
    return float(top)


def line_chart(
    *,
    title: str,
    labels: list[str],
    series: list[tuple[str, list[float | None], str]],
    fmt: str = "number",
    fixed_max: float | None = None,
) -> dict[str, Any]:
    """Geometry for one line chart: polyline points, axis ticks and x labels."""
    values = [v for _, points, _ in series for v in points if v is not None]
    top = fixed_max if fixed_max is not None else _scale_max(values)
    plot_w = CHART_W - PAD_L - PAD_R
    plot_h = CHART_H - PAD_T - PAD_B
    count = len(labels)

    def x(i: int) -> float:
        return PAD_L + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(v: float) -> float:
        return PAD_T + plot_h - (plot_h * min(max(v, 0), top) / top)

    lines = []
    for name, points, css in series:
        coords = [(x(i), y(v)) for i, v in enumerate(points) if v is not None]
        lines.append(
            {
                "name": name,
                "css": css,
                "points": " ".join(f"{px:.1f},{py:.1f}" for px, py in coords),
                "dots": [{"x": f"{px:.1f}", "y": f"{py:.1f}"} for px, py in coords]
                if len(coords) <= 31
                else [],
            }
        )
    ticks = [{"y": f"{y(top * f):.1f}", "value": top * f} for f in (0, 0.5, 1)]
    step = max(1, count // 6)
    last = count - 1
    x_labels = [
        {
            "x": f"{x(i):.1f}",
            "text": label[5:] if len(label) == 10 else label,
            # The end labels grow inwards: centred, the first one runs into the y-axis labels
            # and the last one past the chart's right edge (both visible at phone width).
            "anchor": "start" if i == 0 and last else "end" if i == last and last else "middle",
        }
        for i, label in enumerate(labels)
        # Always label the last day; drop a regular label that would crowd it.
        if i == last or (i % step == 0 and last - i >= step / 2)
    ]
    for k, label in enumerate(x_labels):
        # Phones hide every other label (routeplane.css), counted back from the last one, which
        # stays: the labels there are bigger relative to the chart and would run together.
        label["minor"] = (len(x_labels) - 1 - k) % 2 == 1
    return {
        "title": title,
        "lines": lines,
        "ticks": ticks,
        "x_labels": x_labels,
        "fmt": fmt,
        "width": CHART_W,
        "height": CHART_H,
        "left": PAD_L,
        "right": CHART_W - PAD_R,
        "bottom": CHART_H - PAD_B,
        "empty": not values,
    }


def charts_for(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    labels = [str(pick(d, "day", "")) for d in days]

    def col(name: str) -> list[float | None]:
        # Rates and latency are already None on days without requests (_normalise_days): such
        # a day gets no point, rather than a point at 0 that would read as a real value.
        return [
            float(value) if isinstance(value := pick(d, name), int | float) else None for d in days
        ]

    return [
        line_chart(
            title="Cost per day: actual vs all-strong baseline",
            labels=labels,
            series=[
                ("Baseline (all strong)", col("baseline_cost"), "s-baseline"),
                ("Actual", col("actual_cost"), "s-actual"),
            ],
            fmt="money",
        ),
        line_chart(
            title="Savings and strong-model share",
            labels=labels,
            series=[
                (
                    "Savings",
                    [None if v is None else v / 100 for v in col("savings_percent")],
                    "s-savings",
                ),
                ("Strong share", col("strong_share"), "s-strong"),
            ],
            fmt="pct",
            fixed_max=1.0,
        ),
        line_chart(
            title="Success and fallback rate",
            labels=labels,
            series=[
                ("Success", col("success_rate"), "s-success"),
                ("Fallback", col("fallback_rate"), "s-fallback"),
            ],
            fmt="pct",
            fixed_max=1.0,
        ),
        line_chart(
            title="Average latency (ms)",
            labels=labels,
            series=[("Average", col("average_latency_ms"), "s-p50")],
            fmt="ms",
        ),
    ]


def _normalise_days(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for d in days:
        row = {name: pick(d, name) for name in CSV_COLUMNS}
        if not row["total_requests"]:
            row.update(dict.fromkeys(PER_REQUEST_COLUMNS))
        out.append(row)
    return out


# --- Views -----------------------------------------------------------------------------------


@vary_on_headers(*HTMX_VARY)
@dashboard_view()
def router_savings(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    period = period_from(request)
    if request.GET.get("format") == "csv":
        return _csv_response(router, period)
    report = reports.savings_report(router=router, period_days=period)
    days = _normalise_days(list((report or {}).get("by_day") or []))
    context = {
        "router": router,
        "period": period,
        "periods": PERIODS,
        "report": report,
        "summary": {name: pick(report, name) for name in SUMMARY_FIELDS},
        "days": days,
        "charts": charts_for(days) if days else [],
        "by_domain": list((report or {}).get("by_domain") or []),
        "by_model": list((report or {}).get("by_model") or []),
        "by_revision": revision_breakdown(router=router, period_days=period),
        "read_only": not request.is_operator,
    }
    context["summary"]["savings_fraction"] = reports.savings_fraction(report)
    if not context["summary"]["total_requests"]:
        # As on the daily rows: with no request in the period, rates and latency are unknown.
        context["summary"].update(dict.fromkeys(SUMMARY_PER_REQUEST))
    template = "dashboard/savings.html"
    if htmx_partial(request):
        template += "#savings-body"
    return render(request, template, context)


@require_GET
@dashboard_view()
def router_savings_csv(request: HttpRequest, slug: str) -> HttpResponse:
    return _csv_response(router_or_404(slug), period_from(request))


def _csv_response(router: Any, period: int) -> HttpResponse:
    report = reports.savings_report(router=router, period_days=period) or {}
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{router.slug}-savings-{period}d.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for row in _normalise_days(list(report.get("by_day") or [])):
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return response


@require_POST
@dashboard_view(write=True)
def router_recompute(request: HttpRequest, slug: str) -> HttpResponse:
    router = router_or_404(slug)
    try:
        result = tasks.recompute_savings.delay(router.pk)
    except Exception:
        # Broker (Redis) down: say so rather than fail the page.
        log.exception("could not queue recompute_savings")
        context = {"router": router, "state": "BROKER_DOWN", "task_id": None}
        return render(request, "dashboard/savings.html#recompute-status", context, status=503)
    context = {"router": router, "state": "PENDING", "task_id": result.id}
    return render(request, "dashboard/savings.html#recompute-status", context, status=202)


@vary_on_headers("HX-Request")
@dashboard_view()
def router_recompute_status(request: HttpRequest, slug: str, task_id: str) -> HttpResponse:
    router = router_or_404(slug)
    try:
        uuid.UUID(task_id)
    except ValueError:
        return HttpResponseBadRequest("not a task id")
    from celery.result import AsyncResult

    progress = None
    try:
        result = AsyncResult(task_id)
        state = result.state
        info = str(result.info) if state == "FAILURE" else ""
        if state == "PROGRESS" and isinstance(result.info, dict) and result.info.get("total"):
            progress = round(100 * result.info.get("done", 0) / result.info["total"])
    except Exception:
        log.exception("could not read task state")
        state, info = "UNKNOWN", ""
    context = {
        "router": router,
        "state": state,
        "task_id": task_id,
        "info": info,
        "progress": progress,
    }
    response = render(request, "dashboard/savings.html#recompute-status", context)
    if state == "SUCCESS":
        # Tell the page to reload its figures now that the recompute is done.
        response["HX-Trigger"] = "savings-recomputed"
    return response
