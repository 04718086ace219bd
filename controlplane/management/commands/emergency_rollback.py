from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from controlplane.actors import Actor
from controlplane.management.common import command_error, get_router
from controlplane.services import emergency_rollback


class Command(BaseCommand):
    help = (
        "Emergency rollback: one audited revision with the kill switch engaged, routing off "
        "everywhere, tracking and monitoring on. Release it explicitly afterwards."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("router", help="router slug")
        parser.add_argument("--reason", required=True, help="why (kept in the audit log)")

    def handle(self, *args: Any, router: str, reason: str, **options: Any) -> None:
        target = get_router(router)
        try:
            revision = emergency_rollback(
                router=target, reason=reason, actor=Actor.cli("emergency_rollback")
            )
        except ValidationError as exc:
            raise command_error(exc) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Emergency rollback of {target.slug}: revision {revision.number}, kill switch "
                "engaged, routing off. Routers pick it up within a second."
            )
        )
