"""Scheduled changes: applied at their time by the beat job, exactly once, as "scheduler"."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from controlplane import services
from controlplane.actors import Actor
from controlplane.change_requests import set_change_policy
from controlplane.models import AuditEntry, ConfigRevision, ScheduledChange
from controlplane.scheduled_changes import (
    apply_due_changes,
    approve_scheduled_change,
    cancel_scheduled_change,
    schedule_change,
    update_scheduled_change,
)

ALICE = Actor("user:alice", "127.0.0.1")
BOB = Actor("user:bob", "127.0.0.1")


def soon(seconds: float = 60):
    return timezone.now() + timedelta(seconds=seconds)


@pytest.mark.django_db
def test_due_change__applied_once_by_scheduler(router):
    change = schedule_change(
        router=router,
        action="flag.set",
        params={"name": "routellm_legal_domain", "enabled": True, "rollout_percent": 30},
        run_at=soon(),
        actor=ALICE,
    )
    assert change.status == "pending"
    assert apply_due_changes() == 0  # not yet due
    assert apply_due_changes(now=soon(120)) == 1
    assert apply_due_changes(now=soon(120)) == 0  # done: never twice
    change.refresh_from_db()
    router.refresh_from_db()
    revision = router.current_revision
    assert change.status == "applied" and change.applied_revision == revision.number
    assert revision.actor == "scheduler" and revision.action == "flag.set"
    assert revision.flags_dict()["routellm_legal_domain"] == {
        "enabled": True,
        "rollout_percent": 30,
    }
    assert AuditEntry.objects.filter(actor="scheduler", revision_number=revision.number).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "params", "field"),
    [
        ("phase.set", {"phase": "sideways"}, "phase"),
        ("phase.set", {"phase": "single_domain"}, "domain"),
        ("flag.set", {"name": "nope", "enabled": True}, "name"),
        ("flag.set", {"name": "routellm_enabled", "enabled": "yes"}, "params.enabled"),
        ("flag.set", {"enabled": True}, "params.name"),
        ("kill_switch.release", {"reason": 1}, "params.reason"),
        ("config.update", {}, "action"),
    ],
)
def test_schedule__bad_change__field_error_and_nothing_stored(router, action, params, field):
    with pytest.raises(ValidationError) as caught:
        schedule_change(router=router, action=action, params=params, run_at=soon(), actor=ALICE)
    assert field in caught.value.message_dict
    assert not ScheduledChange.objects.exists()
    assert ConfigRevision.objects.filter(router=router).count() == 1  # the dry run rolled back


@pytest.mark.django_db
def test_schedule__past_time__refused(router):
    with pytest.raises(ValidationError) as caught:
        schedule_change(
            router=router,
            action="phase.set",
            params={"phase": "monitoring"},
            run_at=timezone.now() - timedelta(minutes=1),
            actor=ALICE,
        )
    assert "run_at" in caught.value.message_dict


@pytest.mark.django_db
def test_edit_and_cancel__only_while_it_has_not_run(router):
    change = schedule_change(
        router=router,
        action="phase.set",
        params={"phase": "monitoring"},
        run_at=soon(),
        actor=ALICE,
    )
    later = soon(3600)
    change = update_scheduled_change(change=change, actor=ALICE, run_at=later)
    assert change.run_at == later
    assert apply_due_changes(now=soon(120)) == 0
    cancel_scheduled_change(change=change, actor=ALICE)
    assert apply_due_changes(now=soon(7200)) == 0
    with pytest.raises(ValidationError):
        update_scheduled_change(change=change, actor=ALICE, run_at=soon(10))


@pytest.mark.django_db
def test_policy__held_change_waits_for_another_operator(router, actor):
    set_change_policy(router=router, actor=actor, approve_kill_switch_release=True)
    services.set_kill_switch(router=router, engaged=True, reason="incident", actor=actor)
    change = schedule_change(
        router=router, action="kill_switch.release", params={}, run_at=soon(), actor=ALICE
    )
    assert change.status == "awaiting_approval"
    assert apply_due_changes(now=soon(120)) == 0  # not approved: not run
    with pytest.raises(PermissionDenied):
        approve_scheduled_change(change=change, actor=ALICE)
    approve_scheduled_change(change=change, actor=BOB)
    assert apply_due_changes(now=soon(120)) == 1
    router.refresh_from_db()
    assert router.current_revision.kill_switch is False
    assert router.current_revision.actor == "scheduler"


@pytest.mark.django_db
def test_policy_tightened_after_scheduling__change_fails_with_the_reason(router, actor):
    services.set_phase(router=router, phase="monitoring", actor=actor)
    services.set_phase(router=router, phase="single_domain", domain="legal", actor=actor)
    change = schedule_change(
        router=router, action="phase.set", params={"phase": "full"}, run_at=soon(), actor=ALICE
    )
    assert change.status == "pending"
    set_change_policy(router=router, actor=actor, approve_full_phase=True)
    before = router.revisions.count()
    assert apply_due_changes(now=soon(120)) == 0
    change.refresh_from_db()
    assert change.status == "failed"
    assert "going to phase full needs approval" in change.error
    assert router.revisions.count() == before
    assert AuditEntry.objects.filter(action="scheduled_change.fail", actor="scheduler").exists()


# --- API ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api__schedule_list_edit_cancel(operator_api, viewer_api, router):
    url = f"/api/v1/routers/{router.slug}/scheduled-changes/"
    created = operator_api.post(
        url,
        {"action": "phase.set", "params": {"phase": "monitoring"}, "run_at": soon().isoformat()},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "pending" and body["created_by"].startswith("key:")
    assert viewer_api.post(url, {}, format="json").status_code == 403
    listed = viewer_api.get(url).json()
    assert [c["id"] for c in listed["results"]] == [body["id"]]
    moved = operator_api.patch(
        f"{url}{body['id']}", {"run_at": soon(600).isoformat()}, format="json"
    )
    assert moved.status_code == 200
    cancelled = operator_api.delete(f"{url}{body['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = operator_api.delete(f"{url}{body['id']}")
    assert again.status_code == 400 and "status" in again.json()["errors"]


@pytest.mark.django_db
def test_api__bad_input__400_naming_the_field(operator_api, router):
    url = f"/api/v1/routers/{router.slug}/scheduled-changes/"
    bad = operator_api.post(
        url,
        {"action": "flag.set", "params": {"name": 3}, "run_at": "tomorrow"},
        format="json",
    )
    assert bad.status_code == 400
    assert "run_at" in bad.json()["errors"]


# --- Two real workers racing ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing__a_due_change_applies_exactly_once(router):
    from controlplane import tasks
    from tests.servers import celery_worker_process, test_database_url

    change = schedule_change(
        router=router,
        action="flag.set",
        params={"name": "routellm_scientific_domain", "enabled": True, "rollout_percent": 10},
        run_at=soon(2),
        actor=ALICE,
    )
    url = test_database_url()
    with celery_worker_process(url), celery_worker_process(url):
        time.sleep(max(0.0, (change.run_at - timezone.now()).total_seconds()))
        results = [tasks.apply_scheduled_changes.delay() for _ in range(6)]
        applied = [result.get(timeout=30) for result in results]
    assert sorted(applied) == [0, 0, 0, 0, 0, 1]
    change.refresh_from_db()
    assert change.status == "applied"
    assert ConfigRevision.objects.filter(router=router, actor="scheduler").count() == 1


@pytest.mark.django_db
def test_applied_change__webhook_event_names_it(router):
    from controlplane.webhooks.models import WebhookEvent

    change = schedule_change(
        router=router,
        action="phase.set",
        params={"phase": "monitoring"},
        run_at=soon(),
        actor=ALICE,
    )
    apply_due_changes(now=soon(120))
    event = WebhookEvent.objects.get(router=router, type="scheduled_change.applied")
    change.refresh_from_db()
    assert event.data["scheduled_change"] == change.pk
    assert event.data["revision"] == change.applied_revision
    assert event.data["actor"] == "scheduler" and event.data["created_by"] == "user:alice"
