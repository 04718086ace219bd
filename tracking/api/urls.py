from django.urls import path

from tracking.api import calibration, experiments, views

urlpatterns = [
    path("events", views.EventIngestApi.as_view(), name="events"),
    path("events/outcomes", views.OutcomeIngestApi.as_view(), name="event-outcomes"),
    path("reports/savings", views.SavingsReportApi.as_view(), name="reports-savings"),
    path(
        "routers/<slug:slug>/guardrail",
        views.RouterGuardrailApi.as_view(),
        name="router-guardrail",
    ),
    path(
        "routers/<slug:slug>/calibration",
        calibration.RouterCalibrationApi.as_view(),
        name="router-calibration",
    ),
    path(
        "routers/<slug:slug>/calibration/apply",
        calibration.RouterCalibrationApplyApi.as_view(),
        name="router-calibration-apply",
    ),
    path(
        "routers/<slug:slug>/what-if", calibration.RouterWhatIfApi.as_view(), name="router-what-if"
    ),
    path("metrics/summary", views.MetricsSummaryApi.as_view(), name="metrics-summary"),
    path(
        "routers/<slug:slug>/experiments",
        experiments.RouterExperimentsApi.as_view(),
        name="router-experiments",
    ),
    path(
        "routers/<slug:slug>/experiments/<int:experiment_id>",
        experiments.RouterExperimentApi.as_view(),
        name="router-experiment",
    ),
    path(
        "routers/<slug:slug>/experiments/<int:experiment_id>/start",
        experiments.ExperimentStartApi.as_view(),
        name="router-experiment-start",
    ),
    path(
        "routers/<slug:slug>/experiments/<int:experiment_id>/stop",
        experiments.ExperimentStopApi.as_view(),
        name="router-experiment-stop",
    ),
    path(
        "routers/<slug:slug>/experiments/<int:experiment_id>/conclude",
        experiments.ExperimentConcludeApi.as_view(),
        name="router-experiment-conclude",
    ),
]
