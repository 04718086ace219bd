from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ControlplaneConfig(AppConfig):
    name = "controlplane"
    verbose_name = "Routeplane control plane"

    def ready(self) -> None:
        from controlplane.reference_data import on_post_migrate

        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="controlplane-reference")
