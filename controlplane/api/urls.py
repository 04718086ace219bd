from django.urls import path

from controlplane.api import changes, flags, views

urlpatterns = [
    path("flags", flags.FlagsApi.as_view(), name="flags"),
    path("routers/", views.RouterListApi.as_view(), name="router-list"),
    path("routers/<slug:slug>/", views.RouterDetailApi.as_view(), name="router-detail"),
    path("routers/<slug:slug>/config", views.RouterConfigApi.as_view(), name="router-config"),
    path("routers/<slug:slug>/flags/<str:name>", views.RouterFlagApi.as_view(), name="router-flag"),
    path("routers/<slug:slug>/phase", views.RouterPhaseApi.as_view(), name="router-phase"),
    path(
        "routers/<slug:slug>/phase/step-back",
        views.RouterStepBackApi.as_view(),
        name="router-step-back",
    ),
    path(
        "routers/<slug:slug>/kill-switch",
        views.RouterKillSwitchApi.as_view(),
        name="router-kill-switch",
    ),
    path("routers/<slug:slug>/rollback", views.RouterRollbackApi.as_view(), name="router-rollback"),
    path(
        "routers/<slug:slug>/revisions/",
        views.RevisionListApi.as_view(),
        name="router-revisions",
    ),
    path(
        "routers/<slug:slug>/revisions/<int:number>/diff",
        views.RevisionDiffApi.as_view(),
        name="router-revision-diff",
    ),
    path("routers/<slug:slug>/clients", views.RouterClientsApi.as_view(), name="router-clients"),
    path("routers/<slug:slug>/keys", views.ApiKeyListApi.as_view(), name="router-keys"),
    path(
        "routers/<slug:slug>/keys/<slug:prefix>",
        views.ApiKeyDetailApi.as_view(),
        name="router-key-detail",
    ),
    path(
        "routers/<slug:slug>/change-policy",
        changes.RouterChangePolicyApi.as_view(),
        name="router-change-policy",
    ),
    path(
        "routers/<slug:slug>/change-requests/",
        changes.ChangeRequestListApi.as_view(),
        name="router-change-requests",
    ),
    path(
        "routers/<slug:slug>/change-requests/<int:pk>",
        changes.ChangeRequestDetailApi.as_view(),
        name="router-change-request",
    ),
    path(
        "routers/<slug:slug>/change-requests/<int:pk>/approve",
        changes.ChangeRequestApproveApi.as_view(),
        name="router-change-request-approve",
    ),
    path(
        "routers/<slug:slug>/change-requests/<int:pk>/reject",
        changes.ChangeRequestRejectApi.as_view(),
        name="router-change-request-reject",
    ),
    path(
        "routers/<slug:slug>/scheduled-changes/",
        changes.ScheduledChangeListApi.as_view(),
        name="router-scheduled-changes",
    ),
    path(
        "routers/<slug:slug>/scheduled-changes/<int:pk>",
        changes.ScheduledChangeDetailApi.as_view(),
        name="router-scheduled-change",
    ),
    path(
        "routers/<slug:slug>/scheduled-changes/<int:pk>/approve",
        changes.ScheduledChangeApproveApi.as_view(),
        name="router-scheduled-change-approve",
    ),
    path("audit/", views.AuditListApi.as_view(), name="audit-list"),
]
