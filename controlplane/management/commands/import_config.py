from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.actors import Actor
from controlplane.management.common import command_error, field_errors_text, get_router
from controlplane.services import update_config
from routing.config import config_errors, default_config_dict, load_yaml_section


class Command(BaseCommand):
    help = (
        "Publish the `routellm:` section of a config.yaml as the router's config (one new "
        "revision). Fields the file leaves out take the RouteLLMConfig defaults, exactly as "
        "RouteLLMConfig.from_yaml would read it; --merge keeps the router's current values "
        "instead. Flags, phase and kill switch are not touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("router", help="router slug")
        parser.add_argument("path", help="config.yaml with a routellm: section")
        parser.add_argument(
            "--merge", action="store_true", help="keep current values for fields not in the file"
        )
        parser.add_argument("--reason", default="", help="recorded in the audit log")

    def handle(
        self, *args: Any, router: str, path: str, merge: bool, reason: str, **options: Any
    ) -> None:
        target = get_router(router)
        section = self._read(path)
        errors = config_errors(section, partial=True)
        if errors:
            raise CommandError(f"{path}: invalid routellm config: {field_errors_text(errors)}")
        current = target.current_revision.config
        wanted = {**(current if merge else default_config_dict()), **section}
        try:
            revision = update_config(
                router=target,
                changes=wanted,
                partial=False,
                actor=Actor.cli("import_config"),
                reason=reason or f"imported from {Path(path).name}",
            )
        except ValidationError as exc:
            raise command_error(exc) from None
        if not revision.changed:
            # Safe to run twice: the same file publishes nothing new.
            self.stdout.write(
                f"Config of {target.slug} already matches {path} "
                f"(revision {revision.number}); nothing written."
            )
            return
        self.stdout.write(
            self.style.SUCCESS(f"Imported {path} into {target.slug}: revision {revision.number}.")
        )

    @staticmethod
    def _read(path: str) -> dict[str, Any]:
        import yaml

        if not Path(path).is_file():
            raise CommandError(f"{path}: no such file")
        try:
            return load_yaml_section(path)
        except yaml.YAMLError as exc:
            raise CommandError(f"{path}: not valid YAML: {exc}") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
