"""Change requests: a per-router policy holds risky writes for a second operator's approval."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from controlplane import services
from controlplane.actors import Actor
from controlplane.approvals import ApprovalRequired
from controlplane.change_requests import (
    approve_change_request,
    file_change_request,
    reject_change_request,
    set_change_policy,
)
from controlplane.models import AuditEntry, ChangeRequest, ConfigRevision

pytestmark = pytest.mark.django_db

ALICE = Actor("user:alice", "127.0.0.1")
BOB = Actor("user:bob", "127.0.0.1")


@pytest.fixture
def single_domain(router, actor):
    services.set_phase(router=router, phase="monitoring", actor=actor)
    services.set_phase(router=router, phase="single_domain", domain="legal", actor=actor)
    router.refresh_from_db()
    return router


def _held(call) -> ChangeRequest:
    with pytest.raises(ApprovalRequired) as caught:
        call()
    return file_change_request(held=caught.value)


# --- Services -------------------------------------------------------------------------------


def test_no_policy__every_write_publishes_at_once(single_domain):
    revision = services.set_phase(router=single_domain, phase="full", actor=ALICE)
    assert revision.phase == "full"
    assert not ChangeRequest.objects.exists()


def test_policy__going_full_is_held__nothing_published(single_domain, actor):
    set_change_policy(router=single_domain, actor=actor, approve_full_phase=True)
    before = single_domain.current_revision.number
    held = _held(lambda: services.set_phase(router=single_domain, phase="full", actor=ALICE))
    single_domain.refresh_from_db()
    assert single_domain.current_revision.number == before
    assert held.status == "pending" and held.base_revision == before
    assert held.requested_by == "user:alice" and held.action == "phase.set"
    assert held.diff["phase"] == {"before": "single_domain", "after": "full"}
    assert held.reasons == ["going to phase full needs approval"]
    assert AuditEntry.objects.filter(action="change_request.create", router=single_domain).exists()


def test_approval__publishes_the_held_state_as_the_requester(single_domain, actor):
    set_change_policy(router=single_domain, actor=actor, approve_full_phase=True)
    held = _held(lambda: services.set_phase(router=single_domain, phase="full", actor=ALICE))
    approved, revision = approve_change_request(change_request=held, actor=BOB, reason="ok")
    assert revision.phase == "full" and revision.actor == "user:alice"
    assert revision.flags_dict()["routellm_enabled"] == {"enabled": True, "rollout_percent": 100}
    assert approved.status == "approved" and approved.decided_by == "user:bob"
    assert approved.applied_revision == revision.number
    entry = AuditEntry.objects.get(action="change_request.approve")
    assert entry.actor == "user:bob" and entry.revision_number == revision.number


def test_approval__own_request__refused(single_domain, actor):
    set_change_policy(router=single_domain, actor=actor, approve_full_phase=True)
    held = _held(lambda: services.set_phase(router=single_domain, phase="full", actor=ALICE))
    with pytest.raises(PermissionDenied):
        approve_change_request(change_request=held, actor=ALICE)
    with pytest.raises(PermissionDenied):
        reject_change_request(change_request=held, actor=ALICE)
    held.refresh_from_db()
    assert held.status == "pending"


def test_approval__stale_base__refused_and_nothing_written(single_domain, actor):
    set_change_policy(router=single_domain, actor=actor, approve_full_phase=True)
    held = _held(lambda: services.set_phase(router=single_domain, phase="full", actor=ALICE))
    services.set_flag(router=single_domain, name="routellm_a_b_testing", enabled=True, actor=BOB)
    count = ConfigRevision.objects.filter(router=single_domain).count()
    with pytest.raises(services.StaleRevision):
        approve_change_request(change_request=held, actor=BOB)
    assert ConfigRevision.objects.filter(router=single_domain).count() == count
    held.refresh_from_db()
    assert held.status == "pending"


def test_rejection__decided_once(single_domain, actor):
    set_change_policy(router=single_domain, actor=actor, approve_full_phase=True)
    held = _held(lambda: services.set_phase(router=single_domain, phase="full", actor=ALICE))
    rejected = reject_change_request(change_request=held, actor=BOB, reason="not today")
    assert rejected.status == "rejected" and rejected.decision_reason == "not today"
    with pytest.raises(ValidationError):
        approve_change_request(change_request=held, actor=BOB)


def test_policy__kill_switch_release_held__engage_and_emergency_never(router, actor):
    set_change_policy(router=router, actor=actor, approve_kill_switch_release=True)
    services.set_kill_switch(router=router, engaged=True, reason="bad answers", actor=ALICE)
    services.emergency_rollback(router=router, reason="worse", actor=ALICE)
    _held(lambda: services.set_kill_switch(router=router, engaged=False, actor=ALICE))
    router.refresh_from_db()
    assert router.current_revision.kill_switch is True


def test_policy__threshold_change_above_step_held__small_ones_pass(router, actor):
    set_change_policy(router=router, actor=actor, approve_threshold_change_above=0.05)
    services.update_config(router=router, changes={"threshold": 0.15}, actor=ALICE)  # +0.034
    held = _held(
        lambda: services.update_config(router=router, changes={"threshold": 0.5}, actor=ALICE)
    )
    assert held.diff["config.threshold"] == {"before": 0.15, "after": 0.5}
    assert "threshold change above 0.05" in held.reasons[0]


def test_policy__steps_down_never_held(single_domain, actor):
    set_change_policy(
        router=single_domain,
        actor=actor,
        approve_full_phase=True,
        approve_kill_switch_release=True,
        approve_threshold_change_above=0,
    )
    revision = services.step_back(router=single_domain, actor=ALICE)
    assert revision.phase == "monitoring"


def test_set_change_policy__bad_values__field_errors(router, actor):
    with pytest.raises(ValidationError) as caught:
        set_change_policy(
            router=router,
            actor=actor,
            approve_full_phase="yes",
            approve_threshold_change_above=2,
            nonsense=True,
        )
    assert set(caught.value.message_dict) == {
        "approve_full_phase",
        "approve_threshold_change_above",
        "nonsense",
    }


# --- API ------------------------------------------------------------------------------------


@pytest.fixture
def second_operator_api(router, actor):
    from rest_framework.test import APIClient

    _, raw = services.create_api_key(router=router, role="operator", actor=actor, name="second")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_api__held_write_answers_202_with_the_request__second_operator_approves(
    operator_api, second_operator_api, viewer_api, router
):
    slug = router.slug
    policy = operator_api.put(
        f"/api/v1/routers/{slug}/change-policy", {"approve_full_phase": True}, format="json"
    )
    assert policy.status_code == 200 and policy.json()["approve_full_phase"] is True
    assert viewer_api.get(f"/api/v1/routers/{slug}/change-policy").json()["approve_full_phase"]
    operator_api.post(f"/api/v1/routers/{slug}/phase", {"phase": "monitoring"}, format="json")
    held = operator_api.post(f"/api/v1/routers/{slug}/phase", {"phase": "full"}, format="json")
    assert held.status_code == 202, held.content
    request = held.json()["change_request"]
    assert held.json()["changed"] is False
    assert request["status"] == "pending" and request["stale"] is False
    listed = viewer_api.get(f"/api/v1/routers/{slug}/change-requests/?status=pending").json()
    assert [r["id"] for r in listed["results"]] == [request["id"]]

    own = operator_api.post(f"/api/v1/routers/{slug}/change-requests/{request['id']}/approve")
    assert own.status_code == 403
    viewer = viewer_api.post(f"/api/v1/routers/{slug}/change-requests/{request['id']}/approve")
    assert viewer.status_code == 403
    approved = second_operator_api.post(
        f"/api/v1/routers/{slug}/change-requests/{request['id']}/approve",
        {"reason": "looks good"},
        format="json",
    )
    assert approved.status_code == 200, approved.content
    assert approved.json()["revision"]["phase"] == "full"
    assert approved.json()["change_request"]["status"] == "approved"
    current = operator_api.get(f"/api/v1/routers/{slug}/config")
    assert current["ETag"] == f'"{approved.json()["revision"]["revision"]}"'


def test_api__stale_request__409_and_listed_as_stale(operator_api, second_operator_api, router):
    slug = router.slug
    operator_api.put(
        f"/api/v1/routers/{slug}/change-policy",
        {"approve_threshold_change_above": 0.1},
        format="json",
    )
    held = operator_api.patch(f"/api/v1/routers/{slug}/config", {"threshold": 0.9}, format="json")
    assert held.status_code == 202
    request_id = held.json()["change_request"]["id"]
    operator_api.patch(f"/api/v1/routers/{slug}/config", {"threshold": 0.12}, format="json")
    detail = operator_api.get(f"/api/v1/routers/{slug}/change-requests/{request_id}").json()
    assert detail["stale"] is True
    refused = second_operator_api.post(
        f"/api/v1/routers/{slug}/change-requests/{request_id}/approve"
    )
    assert refused.status_code == 409
    assert "base_revision" in refused.json()["errors"]


def test_api__change_requests_of_another_router__404(operator_api, router, actor):
    other = services.create_router(slug="other", actor=actor)
    set_change_policy(router=other, actor=actor, approve_full_phase=True)
    services.set_phase(router=other, phase="monitoring", actor=actor)
    held = _held(lambda: services.set_phase(router=other, phase="full", actor=ALICE))
    response = operator_api.get(f"/api/v1/routers/{router.slug}/change-requests/{held.pk}")
    assert response.status_code == 404


def test_webhook_events__created_approved_rejected(single_domain, actor):
    from controlplane.webhooks.models import WebhookEvent

    set_change_policy(router=single_domain, actor=actor, approve_full_phase=True)
    first = _held(lambda: services.set_phase(router=single_domain, phase="full", actor=ALICE))
    reject_change_request(change_request=first, actor=BOB)
    second = _held(lambda: services.set_phase(router=single_domain, phase="full", actor=ALICE))
    _, revision = approve_change_request(change_request=second, actor=BOB)
    events = list(
        WebhookEvent.objects.filter(router=single_domain, type__startswith="change_request.")
        .order_by("created_at")
        .values_list("type", "data__change_request")
    )
    assert events == [
        ("change_request.created", first.pk),
        ("change_request.rejected", first.pk),
        ("change_request.created", second.pk),
        ("change_request.approved", second.pk),
    ]
    approved = WebhookEvent.objects.get(type="change_request.approved")
    assert approved.data["applied_revision"] == revision.number


LATER = "2099-01-01T00:00:00Z"
POLICY, SCHEDULE = "change-policy", "scheduled-changes/"


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        (POLICY, "put", {"approve_full_phase": "yes"}, "approve_full_phase"),
        (POLICY, "put", {"approve_kill_switch_release": 1}, "approve_kill_switch_release"),
        (POLICY, "put", {"approve_threshold_change_above": "1"}, "approve_threshold_change_above"),
        (SCHEDULE, "post", {"action": 5, "run_at": LATER}, "action"),
        (SCHEDULE, "post", {"action": "phase.set", "params": [], "run_at": LATER}, "params"),
        (SCHEDULE, "post", {"action": "phase.set", "params": {}, "run_at": 7}, "run_at"),
        (SCHEDULE, "post", {"action": "phase.set", "params": {"phase": 3}, "run_at": LATER},
         "params.phase"),
    ],
)  # fmt: skip
def test_api__wrong_json_types__400_naming_the_field(
    operator_api, router, path, method, body, field
):
    response = getattr(operator_api, method)(
        f"/api/v1/routers/{router.slug}/{path}", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
