"""A/B experiment endpoints: viewers read (with the arms' report), operators write.

GET|POST routers/{slug}/experiments; GET routers/{slug}/experiments/{id} (the experiment and its
report); POST routers/{slug}/experiments/{id}/start | stop | conclude.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import experiments
from controlplane.api.auth import request_actor
from controlplane.api.input import router_for, validated
from controlplane.api.jsontypes import JsonInput
from controlplane.api.output import ErrorOutput
from controlplane.api.permissions import IsViewer
from controlplane.models import Experiment, Router
from tracking.experiment_report import experiment_output, experiment_report


class ExperimentInput(JsonInput):
    name = serializers.CharField(max_length=200)
    treatment_threshold = serializers.FloatField(min_value=0, max_value=1)
    split = serializers.FloatField(min_value=0, max_value=1, required=False)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)


class ReasonInput(JsonInput):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ConclusionInput(JsonInput):
    conclusion = serializers.CharField(max_length=5000)
    apply_treatment = serializers.BooleanField(required=False, default=False)


def _experiment(router: Router, experiment_id: int) -> Experiment:
    return get_object_or_404(
        Experiment.objects.select_related("router"), router=router, pk=experiment_id
    )


class RouterExperimentsApi(APIView):
    """The router's experiments, newest first; POST creates a draft."""

    permission_classes = [IsViewer]

    @extend_schema(
        operation_id="v1_routers_experiments_list",
        responses={200: {"type": "array", "items": {"type": "object"}}},
    )
    def get(self, request: Request, slug: str) -> Response:
        router = router_for(request, slug)
        items = router.experiments.select_related("router")
        return Response([experiment_output(item) for item in items])

    @extend_schema(request=ExperimentInput, responses={201: OpenApiTypes.OBJECT, 400: ErrorOutput})
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

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, slug: str, experiment_id: int) -> Response:
        experiment = _experiment(router_for(request, slug), experiment_id)
        return Response(experiment_report(experiment=experiment))


class _ExperimentTransitionApi(APIView):
    """POST: move an experiment to its next state (one service call, one revision)."""

    permission_classes = [IsViewer]
    transition = staticmethod(experiments.start_experiment)

    @extend_schema(request=ReasonInput, responses={200: OpenApiTypes.OBJECT, 400: ErrorOutput})
    def post(self, request: Request, slug: str, experiment_id: int) -> Response:
        experiment = _experiment(router_for(request, slug), experiment_id)
        data = validated(ReasonInput, request)
        revision = self.transition(experiment=experiment, actor=request_actor(request), **data)
        experiment.refresh_from_db()
        return Response(experiment_output(experiment) | {"revision": revision.number})


class ExperimentStartApi(_ExperimentTransitionApi):
    transition = staticmethod(experiments.start_experiment)


class ExperimentStopApi(_ExperimentTransitionApi):
    transition = staticmethod(experiments.stop_experiment)


class ExperimentConcludeApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(request=ConclusionInput, responses={200: OpenApiTypes.OBJECT, 400: ErrorOutput})
    def post(self, request: Request, slug: str, experiment_id: int) -> Response:
        experiment = _experiment(router_for(request, slug), experiment_id)
        data = validated(ConclusionInput, request)
        experiment = experiments.conclude_experiment(
            experiment=experiment, actor=request_actor(request), **data
        )
        return Response(experiment_output(experiment))
