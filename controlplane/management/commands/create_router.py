from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from controlplane.actors import Actor
from controlplane.management.common import command_error
from controlplane.services import create_router


class Command(BaseCommand):
    help = "Create a router at revision 1 (phase disabled, default config, every flag off)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="letters, numbers, hyphens and underscores")
        parser.add_argument("--name", default="", help="display name (default: the slug)")

    def handle(self, *args: Any, slug: str, name: str, **options: Any) -> None:
        try:
            router = create_router(slug=slug, name=name, actor=Actor.cli("create_router"))
        except ValidationError as exc:
            raise command_error(exc) from None
        self.stdout.write(
            self.style.SUCCESS(f"Created router {router.slug} ({router.name}) at revision 1.")
        )
