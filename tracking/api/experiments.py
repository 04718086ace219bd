"""A/B experiment endpoints: viewers read (with the arms' report), operators write.

GET|POST routers/{slug}/experiments; GET routers/{slug}/experiments/{id} (the experiment and its
report); POST routers/{slug}/experiments/{id}/start | stop | conclude.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import experiments
from controlplane.api.auth import request_actor
from controlplane.api.input import router_for, validated
from controlplane.api.output import ErrorOutput
from controlplane.api.permissions import IsViewer
from controlplane.models import Experiment, Router
from tracking.experiment_report import experiment_output, experiment_report


class _Strict(serializers.Serializer):
    """Numbers must be JSON numbers and booleans JSON booleans (a string "0.3" is a 400)."""

    numbers: tuple[str, ...] = ()
    booleans: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        errors = {}
        for name in self.numbers:
            value = data.get(name) if isinstance(data, dict) else None
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                errors[name] = ["must be a number"]
        for name in self.booleans:
            value = data.get(name) if isinstance(data, dict) else None
            if value is not None and not isinstance(value, bool):
                errors[name] = ["must be true or false"]
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class ExperimentInput(_Strict):
    numbers = ("treatment_threshold", "split")
    name = serializers.CharField(max_length=200)
    treatment_threshold = serializers.FloatField(min_value=0, max_value=1)
    split = serializers.FloatField(min_value=0, max_value=1, required=False)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ConclusionInput(_Strict):
    booleans = ("apply_treatment",)
    conclusion = serializers.CharField(max_length=5000)
    apply_treatment = serializers.BooleanField(required=False, default=False)


def _experiment(router: Router, experiment_id: int) -> Experiment:
    return get_object_or_404(
        Experiment.objects.select_related("router"), router=router, pk=experiment_id
    )


class RouterExperimentsApi(APIView):
    """The router's experiments, newest first; POST creates a draft."""

    permission_classes = [IsViewer]

    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        items = router.experiments.select_related("router")
        return Response([experiment_output(item) for item in items])

    @extend_schema(request=ExperimentInput, responses={201: dict, 400: ErrorOutput})
    def post(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        data = validated(ExperimentInput, request)
        experiment = experiments.create_experiment(
            router=router, actor=request_actor(request), **data
        )
        return Response(experiment_output(experiment), status=201)


class RouterExperimentApi(APIView):
    """One experiment and its report (the arms compared, with 95 % intervals)."""

    permission_classes = [IsViewer]

    def get(self, request: Request, slug: str, experiment_id: int) -> Response:
        experiment = _experiment(router_for(request, slug), experiment_id)
        return Response(experiment_report(experiment=experiment))


class ExperimentStartApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(request=ReasonInput, responses={200: dict, 400: ErrorOutput})
    def post(self, request: Request, slug: str, experiment_id: int) -> Response:
        experiment = _experiment(router_for(request, slug), experiment_id)
        data = validated(ReasonInput, request)
        revision = experiments.start_experiment(
            experiment=experiment, actor=request_actor(request), **data
        )
        experiment.refresh_from_db()
        return Response(experiment_output(experiment) | {"revision": revision.number})


class ExperimentStopApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(request=ReasonInput, responses={200: dict, 400: ErrorOutput})
    def post(self, request: Request, slug: str, experiment_id: int) -> Response:
        experiment = _experiment(router_for(request, slug), experiment_id)
        data = validated(ReasonInput, request)
        revision = experiments.stop_experiment(
            experiment=experiment, actor=request_actor(request), **data
        )
        experiment.refresh_from_db()
        return Response(experiment_output(experiment) | {"revision": revision.number})


class ExperimentConcludeApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(request=ConclusionInput, responses={200: dict, 400: ErrorOutput})
    def post(self, request: Request, slug: str, experiment_id: int) -> Response:
        experiment = _experiment(router_for(request, slug), experiment_id)
        data = validated(ConclusionInput, request)
        experiment = experiments.conclude_experiment(
            experiment=experiment, actor=request_actor(request), **data
        )
        return Response(experiment_output(experiment))
