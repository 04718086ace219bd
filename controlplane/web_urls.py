from django.contrib.auth.views import LogoutView
from django.urls import path

from controlplane import views

app_name = "controlplane"

urlpatterns = [
    path("login/", views.RoutePlaneLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("", views.overview, name="overview"),
    path("audit/", views.audit, name="audit"),
    path("routers/<slug:slug>/", views.router_detail, name="router-detail"),
    path("routers/<slug:slug>/clients/", views.router_clients, name="router-clients"),
    path("routers/<slug:slug>/phase/", views.router_phase, name="router-phase"),
    path("routers/<slug:slug>/step-back/", views.router_step_back, name="router-step-back"),
    path("routers/<slug:slug>/kill-switch/", views.router_kill_switch, name="router-kill-switch"),
    path("routers/<slug:slug>/flags/<str:name>/", views.router_flag, name="router-flag"),
    path("routers/<slug:slug>/config/", views.router_config, name="router-config"),
    path(
        "routers/<slug:slug>/rollback/<int:number>/",
        views.router_rollback,
        name="router-rollback",
    ),
]
