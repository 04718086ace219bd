"""Change policy, change requests and scheduled changes: the API of controlplane.approvals,
controlplane.change_requests and controlplane.scheduled_changes.

A write that the router's change policy holds answers 202 with the change request it filed
(controlplane.api.errors); these views list, approve and reject those requests.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import change_requests, scheduled_changes, services
from controlplane.api.auth import request_actor
from controlplane.api.errors import errors_response
from controlplane.api.input import router_for, validated
from controlplane.api.jsontypes import JsonInput
from controlplane.api.output import (
    ChangeRequestOutput,
    ErrorOutput,
    RevisionOutput,
    change_request_dict,
    revision_dict,
)
from controlplane.api.permissions import IsOperator, IsViewer
from controlplane.models import (
    ChangePolicy,
    ChangeRequest,
    ChangeRequestStatus,
    ScheduledAction,
    ScheduledChange,
    ScheduledStatus,
)

# --- Shapes -----------------------------------------------------------------------------------


class ChangePolicyIO(JsonInput):
    approve_full_phase = serializers.BooleanField(required=False)
    approve_kill_switch_release = serializers.BooleanField(required=False)
    approve_threshold_change_above = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=1
    )


class DecisionInput(JsonInput):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ScheduledChangeInput(JsonInput):
    action = serializers.ChoiceField(ScheduledAction.values)
    params = serializers.DictField(required=False, default=dict)
    run_at = serializers.DateTimeField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ScheduledChangeUpdateInput(JsonInput):
    params = serializers.DictField(required=False)
    run_at = serializers.DateTimeField(required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ScheduledChangeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    router = serializers.CharField(source="router.slug")
    action = serializers.CharField()
    params = serializers.DictField()
    run_at = serializers.DateTimeField()
    status = serializers.CharField()
    reason = serializers.CharField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    approved_by = serializers.CharField()
    applied_at = serializers.DateTimeField(allow_null=True)
    applied_revision = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()


class ApprovedOutput(serializers.Serializer):
    change_request = ChangeRequestOutput()
    revision = RevisionOutput()


class _Page(PageNumberPagination):
    page_size = 50


def _status_page(request: Request, rows: QuerySet, output: type) -> Response:
    """One page of `rows`, filtered by ?status= (400 naming the field for an unknown one)."""
    wanted = request.query_params.get("status")
    if wanted:
        known = [choice for choice, _ in rows.model._meta.get_field("status").choices]
        if wanted not in known:
            return errors_response({"status": [f"one of {', '.join(known)}"]})
        rows = rows.filter(status=wanted)
    paginator = _Page()
    page = paginator.paginate_queryset(rows, request)
    return paginator.get_paginated_response(output(page, many=True).data)


# --- Views ----------------------------------------------------------------------------------


class RouterChangePolicyApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=ChangePolicyIO)
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        policy = ChangePolicy.objects.filter(router=router).first() or ChangePolicy(router=router)
        return Response(ChangePolicyIO(policy).data)

    @extend_schema(request=ChangePolicyIO, responses={200: ChangePolicyIO, 400: ErrorOutput})
    def put(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        data = validated(ChangePolicyIO, request)
        policy = change_requests.set_change_policy(
            router=router, actor=request_actor(request), **data
        )
        return Response(ChangePolicyIO(policy).data)


STATUS_PARAM = OpenApiParameter("status", str, enum=ChangeRequestStatus.values, required=False)


class ChangeRequestListApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(parameters=[STATUS_PARAM], responses=ChangeRequestOutput(many=True))
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        requests = ChangeRequest.objects.filter(router=router).select_related(
            "router__current_revision"
        )
        return _status_page(request, requests.order_by("-requested_at", "-id"), ChangeRequestOutput)


def _change_request(request: Request, slug: str, pk: int) -> ChangeRequest:
    router = router_for(request, slug)
    return get_object_or_404(
        ChangeRequest.objects.select_related("router__current_revision"), router=router, pk=pk
    )


class ChangeRequestDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=ChangeRequestOutput)
    def get(self, request: Request, slug: str, pk: int) -> Response:
        return Response(change_request_dict(_change_request(request, slug, pk)))


class ChangeRequestApproveApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(
        request=DecisionInput,
        responses={200: ApprovedOutput, 400: ErrorOutput, 403: ErrorOutput, 409: ErrorOutput},
    )
    def post(self, request: Request, slug: str, pk: int) -> Response:
        held = _change_request(request, slug, pk)
        data = validated(DecisionInput, request)
        try:
            approved, revision = change_requests.approve_change_request(
                change_request=held, actor=request_actor(request), reason=data.get("reason", "")
            )
        except services.StaleRevision as exc:
            return errors_response(
                {
                    "base_revision": [
                        f"the router moved on to revision {exc.current} since this request was "
                        f"made on revision {exc.expected}: make the change again"
                    ]
                },
                status.HTTP_409_CONFLICT,
                current_revision=exc.current,
            )
        approved.router.refresh_from_db()
        return Response(
            {"change_request": change_request_dict(approved), "revision": revision_dict(revision)}
        )


class ChangeRequestRejectApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=DecisionInput, responses={200: ChangeRequestOutput, 403: ErrorOutput})
    def post(self, request: Request, slug: str, pk: int) -> Response:
        held = _change_request(request, slug, pk)
        data = validated(DecisionInput, request)
        rejected = change_requests.reject_change_request(
            change_request=held, actor=request_actor(request), reason=data.get("reason", "")
        )
        return Response(change_request_dict(rejected))


SCHEDULED_STATUS_PARAM = OpenApiParameter(
    "status", str, enum=ScheduledStatus.values, required=False
)


class ScheduledChangeListApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(parameters=[SCHEDULED_STATUS_PARAM], responses=ScheduledChangeOutput(many=True))
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        changes = ScheduledChange.objects.filter(router=router).select_related("router")
        return _status_page(request, changes.order_by("run_at", "id"), ScheduledChangeOutput)

    @extend_schema(
        request=ScheduledChangeInput, responses={201: ScheduledChangeOutput, 400: ErrorOutput}
    )
    def post(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        data = validated(ScheduledChangeInput, request)
        change = scheduled_changes.schedule_change(
            router=router, actor=request_actor(request), **data
        )
        return Response(ScheduledChangeOutput(change).data, status=status.HTTP_201_CREATED)


def _scheduled(request: Request, slug: str, pk: int) -> ScheduledChange:
    router = router_for(request, slug)
    return get_object_or_404(ScheduledChange.objects.select_related("router"), router=router, pk=pk)


class ScheduledChangeDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=ScheduledChangeOutput)
    def get(self, request: Request, slug: str, pk: int) -> Response:
        return Response(ScheduledChangeOutput(_scheduled(request, slug, pk)).data)

    @extend_schema(
        request=ScheduledChangeUpdateInput,
        responses={200: ScheduledChangeOutput, 400: ErrorOutput},
    )
    def patch(self, request: Request, slug: str, pk: int) -> Response:
        change = _scheduled(request, slug, pk)
        data = validated(ScheduledChangeUpdateInput, request)
        change = scheduled_changes.update_scheduled_change(
            change=change, actor=request_actor(request), **data
        )
        return Response(ScheduledChangeOutput(change).data)

    @extend_schema(responses={200: ScheduledChangeOutput, 400: ErrorOutput})
    def delete(self, request: Request, slug: str, pk: int) -> Response:
        """Cancel a change that has not run yet (it stays listed, as cancelled)."""
        change = scheduled_changes.cancel_scheduled_change(
            change=_scheduled(request, slug, pk), actor=request_actor(request)
        )
        return Response(ScheduledChangeOutput(change).data)


class ScheduledChangeApproveApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=None, responses={200: ScheduledChangeOutput, 403: ErrorOutput})
    def post(self, request: Request, slug: str, pk: int) -> Response:
        change = scheduled_changes.approve_scheduled_change(
            change=_scheduled(request, slug, pk), actor=request_actor(request)
        )
        return Response(ScheduledChangeOutput(change).data)
