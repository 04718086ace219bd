"""The operator API (README, "API"): one APIView per action, each write one service call."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import selectors, services
from controlplane.api import serializers as inputs
from controlplane.api.auth import request_actor, request_router_scope
from controlplane.api.input import expected_revision, router_for, validated
from controlplane.api.output import (
    ApiKeyOutput,
    AuditPageOutput,
    ClientOutput,
    ErrorOutput,
    NewApiKeyOutput,
    RevisionDiffOutput,
    RevisionOutput,
    RouterOutput,
    WriteOutput,
    api_key_dict,
    audit_dict,
    revision_dict,
    router_dict,
    write_dict,
)
from controlplane.api.permissions import IsOperator, IsRouterReader, IsViewer
from controlplane.models import ApiKey, ConfigRevision
from controlplane.snapshot import Snapshot

WRITE_RESPONSES = {200: WriteOutput, 400: ErrorOutput, 412: ErrorOutput}
IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description='The revision the change is based on, e.g. "3"; a stale one gives 412.',
)


def revision_response(revision: ConfigRevision, code: int = status.HTTP_200_OK) -> Response:
    """A write's answer: the revision and whether the write changed anything."""
    response = Response(write_dict(revision), status=code)
    response["ETag"] = f'"{revision.number}"'
    return response


class RouterListApi(APIView):
    permission_classes = [IsRouterReader]

    @extend_schema(responses=RouterOutput(many=True), operation_id="routers_list")
    def get(self, request: Request) -> Response:
        routers = selectors.router_list()
        scope = request_router_scope(request)
        if scope is not None:
            routers = routers.filter(pk=scope)
        return Response([router_dict(r) for r in routers])

    @extend_schema(request=inputs.RouterInput, responses={201: RouterOutput, 400: ErrorOutput})
    def post(self, request: Request) -> Response:
        if request_router_scope(request) is not None:
            raise PermissionDenied("API keys belong to one router; create routers as a user.")
        data = validated(inputs.RouterInput, request)
        router = services.create_router(
            slug=data["slug"], name=data.get("name", ""), actor=request_actor(request)
        )
        router.refresh_from_db()
        return Response(router_dict(router), status=status.HTTP_201_CREATED)

    def get_permissions(self) -> list:
        return [IsOperator()] if self.request.method == "POST" else [IsRouterReader()]


class RouterDetailApi(APIView):
    permission_classes = [IsRouterReader]

    @extend_schema(responses=RouterOutput)
    def get(self, request: Request, slug: str) -> Response:
        return Response(router_dict(router_for(request, slug)))


class RouterConfigApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=inputs.ConfigInput)
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        revision = router.current_revision
        response = Response(revision.config)
        response["ETag"] = f'"{revision.number}"'
        return response

    @extend_schema(request=inputs.ConfigInput, responses=WRITE_RESPONSES, parameters=[IF_MATCH])
    def put(self, request: Request, slug: str) -> Response:
        return self._write(request, slug, partial=False)

    @extend_schema(request=inputs.ConfigInput, responses=WRITE_RESPONSES, parameters=[IF_MATCH])
    def patch(self, request: Request, slug: str) -> Response:
        return self._write(request, slug, partial=True)

    def _write(self, request: Request, slug: str, *, partial: bool) -> Response:
        router = router_for(request, slug)
        if not isinstance(request.data, dict):
            raise ValidationError({"body": ["expected a JSON object of config fields"]})
        changes = dict(request.data)
        reason = changes.pop("reason", "")
        if not isinstance(reason, str):
            raise ValidationError({"reason": ["must be a string"]})
        revision = services.update_config(
            router=router,
            changes=changes,
            partial=partial,
            actor=request_actor(request),
            expected_revision=expected_revision(request),
            reason=reason,
        )
        return revision_response(revision)


class RouterFlagApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=inputs.FlagInput, responses=WRITE_RESPONSES, parameters=[IF_MATCH])
    def put(self, request: Request, slug: str, name: str) -> Response:
        router = router_for(request, slug)
        data = validated(inputs.FlagInput, request)
        revision = services.set_flag(
            router=router,
            name=name,
            enabled=data["enabled"],
            rollout_percent=data.get("rollout_percent"),
            actor=request_actor(request),
            expected_revision=expected_revision(request),
            reason=data.get("reason", ""),
        )
        return revision_response(revision)


class RouterPhaseApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=inputs.PhaseInput, responses=WRITE_RESPONSES, parameters=[IF_MATCH])
    def post(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        data = validated(inputs.PhaseInput, request)
        revision = services.set_phase(
            router=router,
            phase=data["phase"],
            domain=data.get("domain"),
            actor=request_actor(request),
            expected_revision=expected_revision(request),
            reason=data.get("reason", ""),
        )
        return revision_response(revision)


class RouterStepBackApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=inputs.StepBackInput, responses=WRITE_RESPONSES, parameters=[IF_MATCH])
    def post(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        data = validated(inputs.StepBackInput, request)
        revision = services.step_back(
            router=router,
            actor=request_actor(request),
            expected_revision=expected_revision(request),
            reason=data.get("reason", ""),
        )
        return revision_response(revision)


class RouterKillSwitchApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=inputs.KillSwitchInput, responses=WRITE_RESPONSES, parameters=[IF_MATCH])
    def post(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        data = validated(inputs.KillSwitchInput, request)
        revision = services.set_kill_switch(
            router=router,
            engaged=data["engaged"],
            reason=data.get("reason", ""),
            actor=request_actor(request),
            expected_revision=expected_revision(request),
        )
        return revision_response(revision)


class RouterRollbackApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=inputs.RollbackInput, responses=WRITE_RESPONSES, parameters=[IF_MATCH])
    def post(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        data = validated(inputs.RollbackInput, request)
        revision = services.rollback_to(
            router=router,
            number=data["revision"],
            reason=data.get("reason", ""),
            actor=request_actor(request),
            expected_revision=expected_revision(request),
        )
        return revision_response(revision)


class RevisionListApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=RevisionOutput(many=True))
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        return Response([revision_dict(r) for r in selectors.revision_list(router=router)])


class RevisionDiffApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=RevisionDiffOutput)
    def get(self, request: Request, slug: str, number: int) -> Response:
        router = router_for(request, slug)
        revisions = {
            r.number: r
            for r in selectors.revision_list(router=router).filter(number__in=[number - 1, number])
        }
        if number not in revisions:
            return Response({"detail": f"No revision {number}."}, status=404)
        after = Snapshot.of(revisions[number])
        previous = revisions.get(number - 1)
        before = Snapshot.of(previous) if previous else Snapshot()
        return Response(
            {
                "revision": number,
                "previous": previous.number if previous else None,
                "changes": before.diff(after),
            }
        )


class AuditPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class AuditListApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        parameters=[
            OpenApiParameter("router", str, description="router slug"),
            OpenApiParameter("actor", str, description="part of the actor label"),
            OpenApiParameter("action", str, description="action prefix, e.g. phase"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=AuditPageOutput,
    )
    def get(self, request: Request) -> Response:
        filters = {name: request.query_params.get(name) for name in ("router", "actor", "action")}
        bad = [name for name, value in filters.items() if value and "\x00" in value]
        if bad:
            raise ValidationError({name: ["must not contain NUL (%00)"] for name in bad})
        for name in ("page", "page_size"):
            value = request.query_params.get(name)
            if value is not None and not (value.isascii() and value.isdigit() and int(value) >= 1):
                raise ValidationError({name: ["must be an integer >= 1"]})
        entries: QuerySet = selectors.audit_list(**filters)
        scope = request_router_scope(request)
        if scope is not None:
            entries = entries.filter(router_id=scope)
        paginator = AuditPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response([audit_dict(e) for e in page])


class ClientPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class RouterClientsApi(APIView):
    permission_classes = [IsViewer]
    pagination_class = ClientPagination  # read by the schema generator: a paginated list

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses=ClientOutput(many=True),
    )
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        paginator = ClientPagination()
        page = paginator.paginate_queryset(selectors.client_list(router=router), request, view=self)
        context = {"current_revision": router.current_revision.number}
        return paginator.get_paginated_response(ClientOutput(page, many=True, context=context).data)


class ApiKeyListApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=ApiKeyOutput(many=True))
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        return Response([api_key_dict(k) for k in selectors.api_key_list(router=router)])

    @extend_schema(request=inputs.ApiKeyInput, responses={201: NewApiKeyOutput})
    def post(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        data = validated(inputs.ApiKeyInput, request)
        key, raw = services.create_api_key(
            router=router,
            role=data["role"],
            name=data.get("name", ""),
            actor=request_actor(request),
        )
        # The only time the key is ever shown.
        return Response({**api_key_dict(key), "key": raw}, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, prefix: str) -> Response:
        router = router_for(request, slug)
        key = get_object_or_404(ApiKey, router=router, prefix=prefix)
        services.revoke_api_key(key=key, actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
