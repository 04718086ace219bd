from django.urls import path

from tracking.api import views

urlpatterns = [
    path("events", views.EventIngestApi.as_view(), name="events"),
    path("events/outcomes", views.OutcomeIngestApi.as_view(), name="event-outcomes"),
    path("reports/savings", views.SavingsReportApi.as_view(), name="reports-savings"),
    path(
        "routers/<slug:slug>/guardrail",
        views.RouterGuardrailApi.as_view(),
        name="router-guardrail",
    ),
    path("metrics/summary", views.MetricsSummaryApi.as_view(), name="metrics-summary"),
]
