from django.contrib.auth.views import LogoutView
from django.urls import path

from dashboard.views import (
    audit,
    calibration,
    changes,
    experiments,
    guardrail,
    login,
    overview,
    routers,
    savings,
    webhooks,
)

app_name = "dashboard"

urlpatterns = [
    path("login/", login.RoutePlaneLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("", overview.overview, name="overview"),
    path("audit/", audit.audit, name="audit"),
    path("routers/<slug:slug>/", routers.router_detail, name="router-detail"),
    path("routers/<slug:slug>/clients/", routers.router_clients, name="router-clients"),
    path("routers/<slug:slug>/phase/", routers.router_phase, name="router-phase"),
    path("routers/<slug:slug>/step-back/", routers.router_step_back, name="router-step-back"),
    path("routers/<slug:slug>/kill-switch/", routers.router_kill_switch, name="router-kill-switch"),
    path("routers/<slug:slug>/flags/<str:name>/", routers.router_flag, name="router-flag"),
    path("routers/<slug:slug>/config/", routers.router_config, name="router-config"),
    path(
        "routers/<slug:slug>/rollback/<int:number>/",
        routers.router_rollback,
        name="router-rollback",
    ),
    path(
        "routers/<slug:slug>/change-requests/<int:pk>/approve/",
        changes.router_change_approve,
        name="router-change-approve",
    ),
    path(
        "routers/<slug:slug>/change-requests/<int:pk>/reject/",
        changes.router_change_reject,
        name="router-change-reject",
    ),
    path(
        "routers/<slug:slug>/change-policy/",
        changes.router_change_policy,
        name="router-change-policy",
    ),
    path("routers/<slug:slug>/schedule/", changes.router_schedule, name="router-schedule"),
    path(
        "routers/<slug:slug>/schedule/<int:pk>/cancel/",
        changes.router_schedule_cancel,
        name="router-schedule-cancel",
    ),
    path(
        "routers/<slug:slug>/schedule/<int:pk>/approve/",
        changes.router_schedule_approve,
        name="router-schedule-approve",
    ),
    path("routers/<slug:slug>/webhooks/", webhooks.router_webhooks, name="router-webhooks"),
    path(
        "routers/<slug:slug>/webhooks/add/", webhooks.webhook_create, name="router-webhook-create"
    ),
    path(
        "routers/<slug:slug>/webhooks/<int:endpoint_id>/test/",
        webhooks.webhook_test,
        name="router-webhook-test",
    ),
    path(
        "routers/<slug:slug>/webhooks/<int:endpoint_id>/remove/",
        webhooks.webhook_delete,
        name="router-webhook-delete",
    ),
    path("routers/<slug:slug>/guardrail/", guardrail.router_guardrail, name="router-guardrail"),
    path(
        "routers/<slug:slug>/guardrail/save/",
        guardrail.router_guardrail_save,
        name="router-guardrail-save",
    ),
    path(
        "routers/<slug:slug>/guardrail/banner/",
        guardrail.router_guardrail_banner,
        name="router-guardrail-banner",
    ),
    path(
        "routers/<slug:slug>/experiments/",
        experiments.router_experiments,
        name="router-experiments",
    ),
    path(
        "routers/<slug:slug>/experiments/add/",
        experiments.experiment_create,
        name="router-experiment-create",
    ),
    path(
        "routers/<slug:slug>/experiments/<int:experiment_id>/start/",
        experiments.experiment_start,
        name="router-experiment-start",
    ),
    path(
        "routers/<slug:slug>/experiments/<int:experiment_id>/stop/",
        experiments.experiment_stop,
        name="router-experiment-stop",
    ),
    path(
        "routers/<slug:slug>/experiments/<int:experiment_id>/conclude/",
        experiments.experiment_conclude,
        name="router-experiment-conclude",
    ),
    path(
        "routers/<slug:slug>/calibration/",
        calibration.router_calibration,
        name="router-calibration",
    ),
    path(
        "routers/<slug:slug>/calibration/apply/",
        calibration.router_calibration_apply,
        name="router-calibration-apply",
    ),
    path("routers/<slug:slug>/what-if/", calibration.router_what_if, name="router-what-if"),
    path("routers/<slug:slug>/savings/", savings.router_savings, name="router-savings"),
    path("routers/<slug:slug>/savings.csv", savings.router_savings_csv, name="router-savings-csv"),
    path(
        "routers/<slug:slug>/savings/recompute/",
        savings.router_recompute,
        name="router-recompute",
    ),
    path(
        "routers/<slug:slug>/savings/recompute/<str:task_id>/",
        savings.router_recompute_status,
        name="router-recompute-status",
    ),
]
