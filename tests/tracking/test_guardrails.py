"""Guardrails step a routed phase back when its events look bad, once, audited."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane import services
from controlplane.models import AuditEntry
from tracking import guardrails
from tracking.ingest import record_events
from tracking.models import Guardrail
from tracking.tasks import check_guardrails

pytestmark = pytest.mark.django_db


def post_events(router, *, ok: int, failed: int = 0, fallbacks: int = 0, at=None):
    at = at or timezone.now()
    events = []
    for index in range(ok + failed):
        events.append(
            {
                "event_id": str(uuid.uuid4()),
                "timestamp": at.isoformat(),
                "selected_model": "gpt-3.5-turbo",
                "success": index >= failed,
                "fallback_used": index < fallbacks,
            }
        )
    result = record_events(router_id=router.pk, payload={"events": events})
    assert result.accepted == ok + failed


@pytest.fixture
def routed(router, actor):
    services.set_phase(router=router, phase="monitoring", actor=actor)
    services.set_phase(router=router, phase="single_domain", domain="technical", actor=actor)
    services.set_phase(router=router, phase="full", actor=actor)
    guardrails.set_guardrail(router=router, actor=actor, enabled=True, min_requests=20)
    router.refresh_from_db()
    return router


def test_bad_success_rate__steps_back_once_with_reason(routed):
    post_events(routed, ok=15, failed=5)  # 75 % success < 95 %

    assert check_guardrails() == 1
    routed.refresh_from_db()
    assert routed.current_revision.phase == "single_domain"
    entry = AuditEntry.objects.filter(router=routed).first()
    assert entry.action == "phase.step_back"
    assert entry.actor == "system:guardrail"
    assert "success rate 75.0% < 95.0%" in entry.reason
    assert Guardrail.objects.get(router=routed).last_tripped_at is not None
    # The new revision starts a new window: the old bad events do not trip it again.
    assert check_guardrails() == 0


def test_fallback_rate__trips(routed):
    post_events(routed, ok=20, fallbacks=10)
    assert check_guardrails() == 1
    assert "fallback rate 50.0% > 25.0%" in AuditEntry.objects.filter(router=routed).first().reason


def test_healthy_or_too_few_events_or_disabled__no_change(routed, actor):
    post_events(routed, ok=10, failed=5)  # bad, but fewer than min_requests
    assert check_guardrails() == 0
    post_events(routed, ok=100)
    assert check_guardrails() == 0  # 110/115 = 95.6 % is healthy
    guardrails.set_guardrail(router=routed, actor=actor, enabled=False)
    post_events(routed, failed=50, ok=0)
    assert check_guardrails() == 0
    routed.refresh_from_db()
    assert routed.current_revision.phase == "full"


def test_events_before_the_revision__ignored(routed):
    post_events(routed, ok=0, failed=30, at=timezone.now() - timedelta(hours=1))
    assert check_guardrails() == 0


def test_kill_switch_engaged__no_step(routed, actor):
    services.set_kill_switch(router=routed, engaged=True, reason="x", actor=actor)
    post_events(routed, ok=0, failed=30)
    assert check_guardrails() == 0


def test_guardrail_api__viewer_reads_operator_writes_bad_input_400(
    operator_api, viewer_api, router
):
    url = "/api/v1/routers/checkout/guardrail"
    assert viewer_api.get(url).json()["enabled"] is False
    assert viewer_api.put(url, {"enabled": True}, format="json").status_code == 403
    response = operator_api.put(url, {"enabled": True, "min_success_rate": 0.9}, format="json")
    assert response.status_code == 200
    assert response.json()["min_success_rate"] == 0.9
    bad = operator_api.put(url, {"min_success_rate": 1.5}, format="json")
    assert bad.status_code == 400
    assert "min_success_rate" in bad.json()["errors"]
    assert AuditEntry.objects.filter(action="guardrail.set").count() == 1


def test_trip__stores_the_figures__tripped_while_its_step_back_is_current(routed, actor):
    assert guardrails.tripped_guardrail(router=routed) is None
    post_events(routed, ok=14, failed=6, fallbacks=8)

    assert check_guardrails() == 1

    routed.refresh_from_db()
    guardrail = guardrails.tripped_guardrail(router=routed)
    assert guardrail is not None
    assert guardrail.tripped_revision == routed.current_revision.number
    assert (guardrail.tripped_requests, guardrail.tripped_success_rate) == (20, 0.7)
    assert guardrail.tripped_fallback_rate == 0.4
    assert guardrail.tripped_since is not None
    assert "fallback rate 40.0% > 25.0%" in guardrail.tripped_reason
    # An operator moves on (a new revision): the trip is history, no longer the current state.
    services.set_phase(router=routed, phase="full", actor=actor)
    routed.refresh_from_db()
    assert guardrails.tripped_guardrail(router=routed) is None
