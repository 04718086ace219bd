from django.urls import path

from tracking import views

app_name = "tracking"

urlpatterns = [
    path("routers/<slug:slug>/savings/", views.router_savings, name="router-savings"),
    path("routers/<slug:slug>/savings.csv", views.router_savings_csv, name="router-savings-csv"),
    path(
        "routers/<slug:slug>/savings/recompute/",
        views.router_recompute,
        name="router-recompute",
    ),
    path(
        "routers/<slug:slug>/savings/recompute/<str:task_id>/",
        views.router_recompute_status,
        name="router-recompute-status",
    ),
]
