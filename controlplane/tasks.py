"""Control-plane Celery tasks: thin wrappers that call services."""

from __future__ import annotations

from celery import shared_task

from controlplane.models import Guardrail


@shared_task(name="controlplane.tasks.check_guardrails")
def check_guardrails() -> int:
    """Check every enabled guardrail; returns how many stepped a router back."""
    from tracking.guardrails import check_guardrail

    tripped = 0
    for guardrail in Guardrail.objects.filter(enabled=True):
        if check_guardrail(guardrail=guardrail) is not None:
            tripped += 1
    return tripped
