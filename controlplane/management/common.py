"""Helpers the management commands share (kept outside commands/, so it is not a command)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from controlplane.models import Router


def get_router(slug: str) -> Router:
    router = Router.objects.filter(slug=slug).first()
    if router is None:
        known = ", ".join(Router.objects.values_list("slug", flat=True)[:20]) or "none yet"
        raise CommandError(f"no router {slug!r} (routers: {known})")
    return router


def field_errors_text(errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())


def command_error(exc: ValidationError) -> CommandError:
    """A service's ValidationError as a one-line CLI error naming each field."""
    if hasattr(exc, "error_dict"):
        return CommandError(field_errors_text(exc.message_dict))
    return CommandError(" ".join(exc.messages))
