from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from controlplane.actors import Actor
from controlplane.models import Router
from controlplane.services import create_api_key, create_router, set_flag, set_phase, update_config
from tracking.demo import seed_events

DEMO_ROUTER = "demo"
DEFAULT_PASSWORD = "routeplane-demo"
# The migration guide's config.yaml values: the demo starts where the guide starts.
SEED_CONFIG = {
    "enabled": False,
    "router_type": "mf",
    "threshold": 0.11593,
    "strong_model": "gpt-4-1106-preview",
    "weak_model": "gpt-3.5-turbo",
    "cost_tracking_enabled": True,
    "cost_optimization_target": 0.5,
    "fallback_enabled": True,
    "max_retry_attempts": 3,
    "timeout_seconds": 30.0,
}
# Django admin rights of the "operator" group: read everything, revoke keys.
OPERATOR_ADMIN_PERMISSIONS = [
    "view_router",
    "view_configrevision",
    "view_flagstate",
    "view_auditentry",
    "view_apikey",
    "change_apikey",
    "view_routerclient",
]


class Command(BaseCommand):
    help = (
        "Demo data, safe to run again: an operator and a viewer login, a router 'demo' with a "
        "router key and an operator key (printed only when the router is created, for the "
        "examples) and revisions across phases, and "
        "synthetic events when the tracking app can ingest them. Passwords are set only when a "
        "user is created (--password, else $ROUTEPLANE_DEMO_PASSWORD, else 'routeplane-demo')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default=None)
        parser.add_argument("--days", type=int, default=14, help="days of synthetic events")

    def handle(self, *args: Any, password: str | None, days: int, **options: Any) -> None:
        password = password or os.environ.get("ROUTEPLANE_DEMO_PASSWORD") or DEFAULT_PASSWORD
        actor = Actor.cli("seed_demo")
        for username, group in (("operator", "operator"), ("viewer", "viewer")):
            created = self._user(username, group, password)
            state = f"password: {password}" if created else "exists; password unchanged"
            self.stdout.write(f"Demo login ({group}): user {username!r}, {state}")

        router, raw_keys = self._router(actor)
        if raw_keys:
            self.stdout.write(f"Demo router {router.slug!r} created.")
            for role, raw in raw_keys.items():
                self.stdout.write(f"Its {role} key (shown only now): {raw}")
        else:
            self.stdout.write(
                f"Demo router {router.slug!r} exists (revision {router.current_revision.number})."
            )
        added = seed_events(router=router, days=days)
        self.stdout.write(f"Synthetic events: {added} added.")

    def _user(self, username: str, group_name: str, password: str) -> bool:
        user_model = get_user_model()
        group, _ = Group.objects.get_or_create(name=group_name)
        if group_name == "operator":
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label="controlplane", codename__in=OPERATOR_ADMIN_PERMISSIONS
                )
            )
        user = user_model.objects.filter(username=username).first()
        created = user is None
        if created:
            try:
                validate_password(password, user_model(username=username))
            except ValidationError as exc:
                raise CommandError(f"--password: {' '.join(exc.messages)}") from exc
            user = user_model.objects.create_user(username, password=password)
        if group_name == "operator" and not user.is_staff:
            user.is_staff = True  # the operator may open /admin/ (read, revoke keys)
            user.save(update_fields=["is_staff"])
        user.groups.add(group)
        return created

    @transaction.atomic
    def _router(self, actor: Actor) -> tuple[Router, dict[str, str]]:
        """The demo router and, when it is new, its raw keys by role (a router key for
        routers, an operator key for the examples that change flags)."""
        existing = Router.objects.filter(slug=DEMO_ROUTER).first()
        if existing is not None:
            return existing, {}
        router = create_router(slug=DEMO_ROUTER, name="Demo router", actor=actor)
        update_config(router=router, changes=SEED_CONFIG, actor=actor, reason="seed config.yaml")
        set_phase(router=router, phase="monitoring", actor=actor, reason="watch costs first")
        set_phase(
            router=router,
            phase="single_domain",
            domain="technical",
            actor=actor,
            reason="technical prompts first",
        )
        set_flag(
            router=router,
            name="routellm_technical_domain",
            enabled=True,
            rollout_percent=50,
            actor=actor,
            reason="half the technical traffic",
        )
        raw_keys = {
            role: create_api_key(router=router, role=role, name=f"demo {role}", actor=actor)[1]
            for role in ("router", "operator")
        }
        router.refresh_from_db()
        return router, raw_keys
