"""Webhook endpoints of a router: CRUD (operators write, viewers read), test, delivery log."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.auth import request_actor
from controlplane.api.input import router_for
from controlplane.api.output import ErrorOutput
from controlplane.api.permissions import IsOperator, IsViewer
from controlplane.models import Router
from controlplane.webhooks import selectors, services
from controlplane.webhooks.api import serializers
from controlplane.webhooks.models import WebhookEndpoint

ENDPOINT_FIELDS = ("url", "event_types", "enabled", "description")


def _body(request: Request) -> dict[str, Any]:
    """The endpoint fields of a JSON object body; other keys are ignored, as by every input of
    the API."""
    if not isinstance(request.data, dict):
        raise ValidationError({"body": ["expected a JSON object"]})
    return {name: value for name, value in request.data.items() if name in ENDPOINT_FIELDS}


def _endpoint(router: Router, endpoint_id: int) -> WebhookEndpoint:
    return get_object_or_404(selectors.endpoint_list(router=router), pk=endpoint_id)


class WebhookListApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=serializers.EndpointOutput(many=True))
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        endpoints = selectors.endpoint_list(router=router)
        return Response(serializers.EndpointOutput(endpoints, many=True).data)

    @extend_schema(
        request=serializers.EndpointInput,
        responses={201: serializers.NewEndpointOutput, 400: ErrorOutput},
        description="The signing secret is in this answer only.",
    )
    def post(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        endpoint = services.create_endpoint(
            router=router, actor=request_actor(request), **_required_url(_body(request))
        )
        return Response(serializers.NewEndpointOutput(endpoint).data, status.HTTP_201_CREATED)


def _required_url(body: dict[str, Any]) -> dict[str, Any]:
    if "url" not in body:
        raise ValidationError({"url": ["This field is required."]})
    return body


class WebhookDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=serializers.EndpointOutput)
    def get(self, request: Request, slug: str, endpoint_id: int) -> Response:
        endpoint = _endpoint(router_for(request, slug), endpoint_id)
        return Response(serializers.EndpointOutput(endpoint).data)

    @extend_schema(
        request=serializers.EndpointPatchInput,
        responses={200: serializers.EndpointOutput, 400: ErrorOutput},
    )
    def patch(self, request: Request, slug: str, endpoint_id: int) -> Response:
        endpoint = _endpoint(router_for(request, slug), endpoint_id)
        endpoint = services.update_endpoint(
            endpoint=endpoint, actor=request_actor(request), **_body(request)
        )
        return Response(serializers.EndpointOutput(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, endpoint_id: int) -> Response:
        endpoint = _endpoint(router_for(request, slug), endpoint_id)
        services.delete_endpoint(endpoint=endpoint, actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTestApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=None, responses={202: serializers.TestSentOutput})
    def post(self, request: Request, slug: str, endpoint_id: int) -> Response:
        endpoint = _endpoint(router_for(request, slug), endpoint_id)
        event = services.send_test(endpoint=endpoint, actor=request_actor(request))
        return Response({"event_id": str(event.id), "type": event.type}, status.HTTP_202_ACCEPTED)


class WebhookAttemptListApi(APIView):
    """The delivery log of one endpoint, newest first (the last 100 attempts)."""

    permission_classes = [IsViewer]

    @extend_schema(responses=serializers.AttemptOutput(many=True))
    def get(self, request: Request, slug: str, endpoint_id: int) -> Response:
        endpoint = _endpoint(router_for(request, slug), endpoint_id)
        attempts = selectors.attempt_list(endpoint=endpoint, limit=100)
        return Response(serializers.AttemptOutput(attempts, many=True).data)
