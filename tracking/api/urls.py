from django.urls import path

from tracking.api import calibration, views

urlpatterns = [
    path("events", views.EventIngestApi.as_view(), name="events"),
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
]
