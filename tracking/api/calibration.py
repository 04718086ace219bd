"""Calibration and what-if endpoints: GET calibration, POST calibration/apply, GET what-if."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.auth import request_actor
from controlplane.api.input import expected_revision, router_for, validated
from controlplane.api.output import ErrorOutput, revision_dict
from controlplane.api.permissions import IsOperator, IsViewer
from tracking.calibration import MAX_DAYS, apply_calibration, calibration
from tracking.whatif import what_if


class WindowInput(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS, required=False)
    domain = serializers.CharField(max_length=64, required=False, allow_blank=True)

    def validate_domain(self, value: str) -> str | None:
        return value.strip().lower() or None


class CalibrationInput(WindowInput):
    target_strong_share = serializers.FloatField(min_value=0, max_value=1, required=False)


class WhatIfInput(WindowInput):
    threshold = serializers.FloatField(min_value=0, max_value=1)


def _query(serializer_class: type, request: Request) -> dict[str, Any]:
    data = serializer_class(data=request.query_params.dict())
    data.is_valid(raise_exception=True)
    values = dict(data.validated_data)
    values.setdefault("days", settings.ROUTEPLANE_CALIBRATION_DAYS)
    return values


class RouterCalibrationApi(APIView):
    """GET routers/{slug}/calibration?days=N&target_strong_share=x&domain=d: the threshold that
    sends the target share of calls to the strong model, with the sample it rests on."""

    permission_classes = [IsViewer]

    @extend_schema(parameters=[CalibrationInput], responses={200: dict, 400: ErrorOutput})
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        return Response(calibration(router=router, **_query(CalibrationInput, request)).as_dict())


class RouterCalibrationApplyApi(APIView):
    """POST routers/{slug}/calibration/apply {"days", "target_strong_share", "domain"} with
    If-Match: publishes the proposal as a revision (the domain's override threshold for a
    domain) and emits threshold.calibrated."""

    permission_classes = [IsOperator]

    @extend_schema(request=CalibrationInput, responses={200: dict, 400: ErrorOutput})
    def post(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        data = validated(CalibrationInput, request)
        data.setdefault("days", settings.ROUTEPLANE_CALIBRATION_DAYS)
        revision, result = apply_calibration(
            router=router,
            actor=request_actor(request),
            expected_revision=expected_revision(request),
            **data,
        )
        response = Response({**revision_dict(revision), "calibration": result.as_dict()})
        response["ETag"] = f'"{revision.number}"'
        return response


class RouterWhatIfApi(APIView):
    """GET routers/{slug}/what-if?threshold=t&days=N&domain=d: the window's calls replayed at
    another threshold, next to what they actually did."""

    permission_classes = [IsViewer]

    @extend_schema(parameters=[WhatIfInput], responses={200: dict, 400: ErrorOutput})
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        return Response(what_if(router=router, **_query(WhatIfInput, request)).as_dict())
