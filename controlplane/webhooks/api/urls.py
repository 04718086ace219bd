from django.urls import path

from controlplane.webhooks.api import views

urlpatterns = [
    path("routers/<slug:slug>/webhooks", views.WebhookListApi.as_view(), name="router-webhooks"),
    path(
        "routers/<slug:slug>/webhooks/<int:endpoint_id>",
        views.WebhookDetailApi.as_view(),
        name="router-webhook",
    ),
    path(
        "routers/<slug:slug>/webhooks/<int:endpoint_id>/test",
        views.WebhookTestApi.as_view(),
        name="router-webhook-test",
    ),
    path(
        "routers/<slug:slug>/webhooks/<int:endpoint_id>/deliveries",
        views.WebhookAttemptListApi.as_view(),
        name="router-webhook-deliveries",
    ),
]
