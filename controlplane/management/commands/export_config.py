from __future__ import annotations

from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandParser

from controlplane.management.common import get_router
from routing.config import CONFIG_FIELDS


class Command(BaseCommand):
    help = "Print the router's current config as YAML with a `routellm:` section."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("router", help="router slug")
        parser.add_argument("-o", "--output", help="write to this file instead of stdout")

    def handle(self, *args: Any, router: str, output: str | None, **options: Any) -> None:
        target = get_router(router)
        revision = target.current_revision
        config = {name: revision.config[name] for name in CONFIG_FIELDS if name in revision.config}
        header = (
            f"# Routeplane router {target.slug!r}, revision {revision.number} "
            f"(phase {revision.phase}{', kill switch engaged' if revision.kill_switch else ''}).\n"
            f"# Re-import with: manage.py import_config {target.slug} <this file>\n"
        )
        body = header + yaml.safe_dump(
            {"routellm": config}, sort_keys=False, default_flow_style=False, allow_unicode=True
        )
        if output:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(body)
            self.stderr.write(f"Wrote {output} (revision {revision.number}).")
        else:
            self.stdout.write(body, ending="")
