from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Routeplane tracking"

    def ready(self) -> None:
        from tracking.reference_data import on_post_migrate

        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="tracking-reference")
