from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from controlplane.management.common import get_router


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class Command(BaseCommand):
    help = "List a router's API keys (prefix, role, name, created, last used, revoked)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("router", help="router slug")

    def handle(self, *args: Any, router: str, **options: Any) -> None:
        target = get_router(router)
        keys = list(target.api_keys.order_by("created_at", "id"))
        if not keys:
            self.stdout.write(f"Router {target.slug} has no API keys.")
            return
        header = ("PREFIX", "ROLE", "NAME", "CREATED (UTC)", "LAST USED", "REVOKED")
        rows = [
            (
                k.prefix,
                k.role,
                k.name or "-",
                _when(k.created_at),
                _when(k.last_used_at),
                _when(k.revoked_at),
            )
            for k in keys
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            self.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )
