from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.actors import Actor
from controlplane.models import ApiKey
from controlplane.services import revoke_api_key


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (as list_api_keys shows it). Takes effect within 1 s."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="the key's prefix, e.g. rp_Ab12Cd34")
        parser.add_argument("--reason", default="", help="recorded in the audit log")

    def handle(self, *args: Any, prefix: str, reason: str, **options: Any) -> None:
        prefix = prefix.rstrip("…")
        key = ApiKey.objects.select_related("router").filter(prefix=prefix).first()
        if key is None:
            raise CommandError(f"no API key with prefix {prefix!r} (see list_api_keys <router>)")
        if key.revoked_at is not None:
            self.stdout.write(f"Key {key.prefix} of {key.router.slug} was already revoked.")
            return
        revoke_api_key(key=key, reason=reason, actor=Actor.cli("revoke_api_key"))
        self.stdout.write(
            self.style.SUCCESS(f"Revoked {key.role} key {key.prefix} of router {key.router.slug}.")
        )
