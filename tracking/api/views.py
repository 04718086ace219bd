"""Tracking API: POST events (the ingestion hot path), POST outcomes, the two report reads.

The events view parses the body itself (orjson, tracking.events_http) and validates with
msgspec in tracking.events: no DRF parser or serializer runs per event.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.auth import request_actor, request_role
from controlplane.api.errors import errors_response
from controlplane.api.input import router_for, validated
from controlplane.api.output import ErrorOutput
from controlplane.api.permissions import IsRouterReader, IsViewer
from controlplane.bodylimit import TOO_LARGE_ERRORS
from controlplane.models import ApiKey, Role, Router
from tracking import guardrails, reports
from tracking.api import serializers
from tracking.events_http import answer_events, answer_outcomes
from tracking.revision_report import revision_breakdown


def _json(data: object, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def _batch_answer(request: Request, answer: Callable[..., tuple[int, bytes]]) -> HttpResponse:
    """A batch post's answer from its raw body (DRF's parsers never run on these hot paths)."""
    try:
        raw = request.body
    except RequestDataTooBig:
        return _json({"errors": TOO_LARGE_ERRORS}, 413)  # as the ASGI wrapper answers
    status, body = answer(router_id=request.auth.router_id, raw=raw)
    return HttpResponse(body, status=status, content_type="application/json")


class CanPostEvents(BasePermission):
    message = "Events are posted with the router's router or operator API key."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ApiKey) and request.auth.role in (
            Role.ROUTER,
            Role.OPERATOR,
        )


class EventIngestApi(APIView):
    """POST {"events": [...]} (at most 1000) -> {"accepted", "duplicates", "rejected"}.

    Under ASGI, tracking.fastpath answers this in front of Django (same answer); this view is
    its fallback (keys it does not know yet, WSGI servers, tests).
    """

    permission_classes = [CanPostEvents]

    @extend_schema(
        request={"application/json": serializers.EVENT_BATCH_SCHEMA},
        responses={200: serializers.IngestResultSerializer},
    )
    def post(self, request: Request) -> HttpResponse:
        return _batch_answer(request, answer_events)


class OutcomeIngestApi(APIView):
    """POST {"outcomes": [...]} (at most 1000): each call's outcome, attached to its event once
    -> {"accepted", "duplicates", "rejected"}."""

    permission_classes = [CanPostEvents]

    @extend_schema(
        request={"application/json": serializers.OUTCOME_BATCH_SCHEMA},
        responses={200: serializers.IngestResultSerializer},
    )
    def post(self, request: Request) -> HttpResponse:
        return _batch_answer(request, answer_outcomes)


def _report_router(request: Request) -> Router:
    """A key reads its own router's reports; a dashboard user names one with ?router=<slug>."""
    if isinstance(request.auth, ApiKey):
        return request.auth.router
    slug = request.query_params.get("router", "")
    if not slug:
        raise PermissionDenied("Name the router with ?router=<slug>.")
    router = Router.objects.filter(slug=slug).first()
    if router is None:
        raise NotFound("No such router.")
    return router


def parse_period_days(raw: str | None) -> int | None:
    """period_days as an integer 1..366 (default 7); None when invalid."""
    if raw is None or raw == "":
        return 7
    raw = raw.strip()
    if not raw.isdigit():
        return None
    value = int(raw)
    return value if 1 <= value <= reports.MAX_PERIOD_DAYS else None


class _ReportApi(APIView):
    permission_classes = [IsRouterReader]
    selector = staticmethod(reports.savings_report)

    def get(self, request: Request) -> Response | HttpResponse:
        period_days = parse_period_days(request.query_params.get("period_days"))
        if period_days is None:
            return errors_response(
                {"period_days": [f"Must be an integer from 1 to {reports.MAX_PERIOD_DAYS}."]}
            )
        if request_role(request) is None:
            raise PermissionDenied()
        router = _report_router(request)
        return _json(self.report(request, router, period_days))

    def report(self, request: Request, router: Router, period_days: int) -> dict:
        return self.selector(router=router, period_days=period_days)


PERIOD_DAYS = OpenApiParameter("period_days", int, description="1..366, default 7")


GROUP_BY = OpenApiParameter("group_by", str, enum=["revision"], description="adds by_revision")


@extend_schema(
    parameters=[PERIOD_DAYS, GROUP_BY], responses={200: serializers.SavingsReportSerializer}
)
class SavingsReportApi(_ReportApi):
    """GET reports/savings?period_days=N: totals plus by_day, by_domain and by_model."""

    selector = staticmethod(reports.savings_report)

    def report(self, request: Request, router: Router, period_days: int) -> dict:
        # ?group_by=revision adds `by_revision` (tracking.revision_report): before/after.
        group_by = request.query_params.get("group_by", "")
        if group_by not in ("", "revision"):
            raise ValidationError({"group_by": ["The only grouping is 'revision'."]})
        data = super().report(request, router, period_days)
        if group_by == "revision":
            data["by_revision"] = revision_breakdown(router=router, period_days=period_days)
        return data


@extend_schema(parameters=[PERIOD_DAYS], responses={200: serializers.MetricsSummarySerializer})
class MetricsSummaryApi(_ReportApi):
    """GET metrics/summary?period_days=N: the headline metrics."""

    selector = staticmethod(reports.metrics_summary)


class RouterGuardrailApi(APIView):
    """Automatic step back when a routed phase hurts success or fallback rates."""

    permission_classes = [IsViewer]

    @extend_schema(responses=serializers.GuardrailOutput)
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        guardrail = guardrails.guardrail_for(router=router)
        return Response(serializers.GuardrailOutput(guardrail).data)

    @extend_schema(
        request=serializers.GuardrailInput,
        responses={200: serializers.GuardrailOutput, 400: ErrorOutput},
    )
    def put(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        data = validated(serializers.GuardrailInput, request)
        guardrail = guardrails.set_guardrail(router=router, actor=request_actor(request), **data)
        return Response(serializers.GuardrailOutput(guardrail).data)
