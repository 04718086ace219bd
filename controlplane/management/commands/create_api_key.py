from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from controlplane.actors import Actor
from controlplane.management.common import command_error, get_router
from controlplane.models import Role
from controlplane.services import create_api_key


class Command(BaseCommand):
    help = (
        "Create an API key for a router and print it once (only its SHA-256 is stored). "
        "The key alone goes to stdout, so KEY=$(manage.py create_api_key ...) works."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("router", help="router slug")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--name", default="", help="what the key is for")

    def handle(self, *args: Any, router: str, role: str, name: str, **options: Any) -> None:
        target = get_router(router)
        try:
            key, raw = create_api_key(
                router=target, role=role, name=name, actor=Actor.cli("create_api_key")
            )
        except ValidationError as exc:
            raise command_error(exc) from None
        self.stderr.write(
            f"Created {role} key {key.prefix}… for router {target.slug}. "
            "Store it now: it is shown only once.",
            style_func=self.style.WARNING,
        )
        self.stdout.write(raw)
