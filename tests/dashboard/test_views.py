"""Dashboard views and htmx partials, through the Django test client on real PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane import services
from controlplane.models import AuditEntry, ConfigRevision, RouterClient

HX = {"HTTP_HX_REQUEST": "true"}


def counts(router):
    return (
        ConfigRevision.objects.filter(router=router).count(),
        AuditEntry.objects.filter(router=router).count(),
    )


def current(router):
    router.refresh_from_db()
    return router.current_revision


PAGES = [
    "/",
    "/routers/checkout/",
    "/routers/checkout/savings/",
    "/audit/",
]


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
def test_page__operator__renders_with_enabled_controls(operator_client, router, url):
    response = operator_client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" in body and "Checkout router" in body or url == "/audit/"
    assert "Viewers cannot change routers" not in body
    assert 'href="/api/docs/"' in body


@pytest.mark.parametrize("url", PAGES)
def test_page__viewer__renders_read_only(viewer_client, router, url):
    response = viewer_client.get(url)
    assert response.status_code == 200
    assert 'href="/api/docs/"' in response.content.decode()


def test_router_page__viewer__every_action_disabled_and_says_why(viewer_client, router):
    services.set_phase(router=router, phase="monitoring", actor=services_actor())
    body = viewer_client.get("/routers/checkout/").content.decode()
    assert "Viewers cannot change routers" in body
    # Every action form sits in a disabled fieldset or has a disabled button.
    assert body.count("<fieldset disabled") >= 3 + 10  # kill, phase, config + 10 flags
    assert 'disabled title="Viewers cannot change routers">Roll back to this' in body


def services_actor():
    from controlplane.actors import Actor

    return Actor("user:someone-else", "10.0.0.9")


@pytest.mark.parametrize("url", PAGES)
def test_page__anonymous__redirects_to_login(client, router, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_partial__anonymous_htmx__client_redirect_to_login(client, router):
    response = client.get("/routers/checkout/clients/", **HX)
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/login/")


@pytest.mark.parametrize("url", PAGES)
def test_page__user_without_role__403_asks_for_a_role(no_role_client, router, url):
    response = no_role_client.get(url)
    assert response.status_code == 403
    assert "Ask a Routeplane administrator" in response.content.decode()


# --- Viewer writes are refused ----------------------------------------------------------------


def _actions(revision: int):
    return [
        ("/routers/checkout/phase/", {"phase": "monitoring", "expected_revision": revision}),
        ("/routers/checkout/step-back/", {"expected_revision": revision}),
        (
            "/routers/checkout/kill-switch/",
            {"engaged": "true", "reason": "test", "expected_revision": revision},
        ),
        (
            "/routers/checkout/flags/routellm_enabled/",
            {"enabled": "on", "rollout_percent": 50, "expected_revision": revision},
        ),
        ("/routers/checkout/config/", {"threshold": "0.3", "expected_revision": revision}),
        ("/routers/checkout/rollback/1/", {"expected_revision": revision}),
        ("/routers/checkout/savings/recompute/", {}),
    ]


@pytest.mark.parametrize("index", range(7))
def test_action__viewer_post__403_and_nothing_written(viewer_client, router, index):
    services.set_phase(router=router, phase="monitoring", actor=services_actor())
    before = counts(router)
    url, data = _actions(current(router).number)[index]
    response = viewer_client.post(url, data, **HX)
    assert response.status_code == 403
    assert "Viewers cannot change routers" in response.content.decode()
    assert counts(router) == before


def test_action__get__405(operator_client, router):
    assert operator_client.get("/routers/checkout/phase/").status_code == 405


# --- Each action: one revision, one audit entry, the right actor ---------------------------


def _config_post(revision, **changes):
    from dashboard.forms import ConfigForm

    data = ConfigForm.initial_from(revision.config, revision.number)
    data = {k: v for k, v in data.items() if v is not False}  # unchecked boxes are absent
    data.update(changes)
    return data


def _assert_one_write(router, before, action):
    revisions, audits = counts(router)
    assert (revisions, audits) == (before[0] + 1, before[1] + 1)
    entry = AuditEntry.objects.filter(router=router).order_by("-id").first()
    assert entry.actor == "user:olivia"
    assert entry.action == action
    assert entry.source_ip == "127.0.0.1"
    assert current(router).actor == "user:olivia"
    return current(router)


def test_phase__advance_to_single_domain__one_revision_audited(operator_client, router):
    services.set_phase(router=router, phase="monitoring", actor=services_actor())
    before = counts(router)
    response = operator_client.post(
        "/routers/checkout/phase/",
        {"phase": "single_domain", "domain": "technical", "expected_revision": 2},
        **HX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and 'id="router-panel"' in body
    assert "Now at revision 3" in body
    revision = _assert_one_write(router, before, "phase.set")
    assert (revision.phase, revision.phase_domain) == ("single_domain", "technical")
    assert revision.flags_dict()["routellm_technical_domain"]["enabled"] is True


def test_phase__single_domain_without_domain__400_nothing_written(operator_client, router):
    before = counts(router)
    response = operator_client.post(
        "/routers/checkout/phase/", {"phase": "single_domain", "expected_revision": 1}, **HX
    )
    assert response.status_code == 400
    assert "choose the domain" in response.content.decode()
    assert counts(router) == before


def test_phase__without_htmx__redirects_with_message(operator_client, router):
    response = operator_client.post(
        "/routers/checkout/phase/", {"phase": "monitoring", "expected_revision": 1}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/routers/checkout/"
    assert "Phase set to Monitoring. Now at revision 2." in response.content.decode()


def test_step_back__from_single_domain__restores_monitoring(operator_client, router):
    services.set_phase(router=router, phase="monitoring", actor=services_actor())
    services.set_phase(router=router, phase="single_domain", domain="legal", actor=services_actor())
    before = counts(router)
    response = operator_client.post("/routers/checkout/step-back/", {"expected_revision": 3}, **HX)
    assert response.status_code == 200
    revision = _assert_one_write(router, before, "phase.step_back")
    assert revision.phase == "monitoring" and revision.restored_from == 2


def test_step_back__disabled_router__409_nothing_written(operator_client, router):
    before = counts(router)
    response = operator_client.post("/routers/checkout/step-back/", {"expected_revision": 1}, **HX)
    assert response.status_code == 409
    assert "already disabled" in response.content.decode()
    assert counts(router) == before


def test_kill_switch__engage_with_reason__audited_and_shown(operator_client, router):
    before = counts(router)
    response = operator_client.post(
        "/routers/checkout/kill-switch/",
        {"engaged": "true", "reason": "legal answers wrong", "expected_revision": 1},
        **HX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "ENGAGED" in body and "Release kill switch" in body
    revision = _assert_one_write(router, before, "kill_switch.engage")
    assert revision.kill_switch is True and revision.kill_switch_reason == "legal answers wrong"

    response = operator_client.post(
        "/routers/checkout/kill-switch/", {"engaged": "false", "expected_revision": 2}, **HX
    )
    assert response.status_code == 200
    assert current(router).kill_switch is False
    assert AuditEntry.objects.filter(action="kill_switch.release", actor="user:olivia").exists()


def test_kill_switch__engage_without_reason__400_inline_error(operator_client, router):
    before = counts(router)
    response = operator_client.post(
        "/routers/checkout/kill-switch/",
        {"engaged": "true", "reason": "  ", "expected_revision": 1},
        **HX,
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "say why you engage the kill switch" in body
    assert 'aria-invalid="true"' in body
    assert counts(router) == before


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"enabled": "on", "rollout_percent": "25"}, {"enabled": True, "rollout_percent": 25}),
        ({"enabled": "on", "rollout_percent": "0"}, {"enabled": True, "rollout_percent": 0}),
    ],
)
def test_flag__save__one_revision(operator_client, router, data, expected):
    before = counts(router)
    response = operator_client.post(
        "/routers/checkout/flags/routellm_a_b_testing/", {**data, "expected_revision": 1}, **HX
    )
    assert response.status_code == 200
    revision = _assert_one_write(router, before, "flag.set")
    assert revision.flags_dict()["routellm_a_b_testing"] == expected


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/routers/checkout/flags/routellm_a_b_testing/", {"rollout_percent": "0"}),  # box unticked
        ("/routers/checkout/phase/", {"phase": "disabled"}),
    ],
)
def test_unchanged_write__nothing_changed_no_revision(operator_client, router, url, data):
    before = counts(router)
    response = operator_client.post(url, {**data, "expected_revision": 1}, **HX)
    assert response.status_code == 200
    assert "Nothing changed; still at revision 1." in response.content.decode()
    assert counts(router) == before


@pytest.mark.parametrize("percent", ["101", "-1", "lots", ""])
def test_flag__bad_rollout__400_nothing_written(operator_client, router, percent):
    before = counts(router)
    response = operator_client.post(
        "/routers/checkout/flags/routellm_enabled/",
        {"enabled": "on", "rollout_percent": percent, "expected_revision": 1},
        **HX,
    )
    assert response.status_code == 400
    assert 'class="error-text"' in response.content.decode()
    assert counts(router) == before


def test_flag__unknown_name__400(operator_client, router):
    response = operator_client.post(
        "/routers/checkout/flags/nope/", {"rollout_percent": 1, "expected_revision": 1}, **HX
    )
    assert response.status_code == 400


def test_config__change_threshold__one_revision_with_readable_diff(operator_client, router):
    before = counts(router)
    response = operator_client.post(
        "/routers/checkout/config/",
        _config_post(current(router), threshold="0.2", reason="cheaper"),
        **HX,
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    revision = _assert_one_write(router, before, "config.update")
    assert revision.config["threshold"] == 0.2
    assert revision.config["strong_model"] == "gpt-4-1106-preview"
    entry = AuditEntry.objects.filter(router=router).order_by("-id").first()
    assert entry.diff == {"config.threshold": {"before": 0.11593, "after": 0.2}}
    body = response.content.decode()
    assert '<del class="before">0.11593</del>' in body and '<ins class="after">0.2</ins>' in body


def test_config__no_change__nothing_written(operator_client, router):
    before = counts(router)
    response = operator_client.post(
        "/routers/checkout/config/", _config_post(current(router)), **HX
    )
    assert response.status_code == 200
    assert "Nothing changed; still at revision 1." in response.content.decode()
    assert counts(router) == before


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"threshold": "1.5"}, "threshold", "must be a number between 0 and 1"),
        ({"threshold": "abc"}, "threshold", "enter a number"),
        ({"max_retry_attempts": "-1"}, "max_retry_attempts", "must be an integer &gt;= 0"),
        ({"timeout_seconds": "0"}, "timeout_seconds", "must be a number &gt; 0"),
        ({"router_type": "quantum"}, "router_type", "Select a valid choice"),
        ({"strong_model": ""}, "strong_model", "This field is required"),
        ({"domain_routing_overrides": "{nope"}, "domain_routing_overrides", "not valid JSON"),
        (
            {"domain_routing_overrides": '{"finance": {}}'},
            "domain_routing_overrides",
            "unknown domain",
        ),
    ],
)
def test_config__bad_input__400_inline_error_nothing_written(
    operator_client, router, changes, field, message
):
    before = counts(router)
    response = operator_client.post(
        "/routers/checkout/config/", _config_post(current(router), **changes), **HX
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert f'id="id_{field}_error"' in body
    assert message in body
    assert "Nothing was changed" in body
    assert counts(router) == before
    assert current(router).number == 1


def test_rollback__to_revision_1__copies_it_keeps_kill_switch(operator_client, router):
    actor = services_actor()
    services.update_config(router=router, changes={"threshold": 0.5}, actor=actor)
    services.set_kill_switch(router=router, engaged=True, reason="incident", actor=actor)
    before = counts(router)
    response = operator_client.post("/routers/checkout/rollback/1/", {"expected_revision": 3}, **HX)
    assert response.status_code == 200
    assert "Rolled back to revision 1" in response.content.decode()
    revision = _assert_one_write(router, before, "rollback")
    assert revision.restored_from == 1
    assert revision.config["threshold"] == 0.11593
    assert revision.kill_switch is True


def test_rollback__unknown_revision__400_nothing_written(operator_client, router):
    before = counts(router)
    response = operator_client.post(
        "/routers/checkout/rollback/99/", {"expected_revision": 1}, **HX
    )
    assert response.status_code == 400
    assert "has no revision 99" in response.content.decode()
    assert counts(router) == before


# --- Stale revisions ---------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(6))
def test_action__stale_revision__409_reloaded_nothing_written(operator_client, router, index):
    services.set_phase(router=router, phase="monitoring", actor=services_actor())
    # Someone else publishes revision 3 while the operator still looks at revision 2.
    services.update_config(router=router, changes={"threshold": 0.3}, actor=services_actor())
    before = counts(router)
    url, data = _actions(2)[index]
    if "config" in url:
        data = _config_post(current(router), threshold="0.4", expected_revision=2)
    response = operator_client.post(url, data, **HX)
    assert response.status_code == 409
    body = response.content.decode()
    assert "Someone else changed this router; reloaded" in body
    assert 'name="expected_revision" value="3"' in body  # forms now carry the fresh revision
    assert counts(router) == before


# --- Overview ----------------------------------------------------------------------------------


def test_overview__clients__connected_and_behind_counted(operator_client, router):
    services.set_phase(router=router, phase="monitoring", actor=services_actor())
    now = timezone.now()
    RouterClient.objects.create(router=router, client_id="a", revision=2, last_seen=now)
    RouterClient.objects.create(router=router, client_id="b", revision=1, last_seen=now)
    RouterClient.objects.create(
        router=router, client_id="c", revision=1, last_seen=now - timedelta(minutes=10)
    )
    body = operator_client.get("/", **HX).content.decode()
    assert "<html" not in body and 'id="router-table"' in body
    assert "2 connected" in body
    assert "1 on an older revision" in body
    assert "Monitoring" in body and "#2" in body


def test_overview__todays_stats_from_tracking(operator_client, router):
    from tracking.ingest import record_events

    now = timezone.now()
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "timestamp": now.isoformat(),
            "selected_model": "gpt-3.5-turbo",
            "prompt_tokens": 1000,
            "completion_tokens": 1000,
            "success": index != 0,
        }
        for index in range(4)
    ]
    result = record_events(router_id=router.pk, payload={"events": events})
    assert result.accepted == 4
    body = operator_client.get("/").content.decode()
    assert "75.0 %" in body  # 3 of 4 succeeded today


def test_overview__kill_switch_engaged__flagged(operator_client, router):
    services.set_kill_switch(router=router, engaged=True, reason="x", actor=services_actor())
    body = operator_client.get("/").content.decode()
    assert "row-killed" in body and "Engaged" in body


# --- Router page parts -------------------------------------------------------------------------


def test_clients_partial__lists_clients_and_marks_behind(operator_client, router):
    services.set_phase(router=router, phase="monitoring", actor=services_actor())
    RouterClient.objects.create(
        router=router, client_id="host-1:123", sdk_version="0.1.0", revision=1
    )
    response = operator_client.get("/routers/checkout/clients/", **HX)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'hx-trigger="every 5s"' in body and "<html" not in body
    assert "host-1:123" in body and "behind #2" in body
    assert response["Vary"].count("HX-Request") == 1


def test_router_page__history__diff_and_rollback_buttons(operator_client, router):
    services.set_phase(router=router, phase="monitoring", actor=services_actor())
    body = operator_client.get("/routers/checkout/").content.decode()
    assert 'id="revision-2"' in body and 'id="revision-1"' in body
    assert "flag routellm_cost_tracking enabled" in body
    # Only earlier revisions get the button; the current one is marked current.
    assert body.count(">Roll back to this<") == 1
    assert 'hx-confirm="Roll Checkout router back to revision 1?' in body


def test_router_page__history_beyond_limit__show_all(operator_client, router):
    for percent in range(1, 23):
        services.set_flag(
            router=router,
            name="routellm_a_b_testing",
            enabled=True,
            rollout_percent=percent,
            actor=services_actor(),
        )
    body = operator_client.get("/routers/checkout/").content.decode()
    assert "Show all 23 revisions" in body
    assert 'id="revision-3"' not in body
    body = operator_client.get("/routers/checkout/?revisions=all&part=history", **HX).content
    assert b'id="revision-1"' in body and b"<html" not in body


def test_router_page__unknown_router__404(operator_client, db):
    assert operator_client.get("/routers/nope/").status_code == 404


def test_router_page__csrf_token_in_hx_headers(operator_client, router):
    body = operator_client.get("/routers/checkout/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in body


def test_action__csrf_enforced(router, operator_user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator_user)
    before = counts(router)
    response = strict.post(
        "/routers/checkout/phase/", {"phase": "monitoring", "expected_revision": 1}
    )
    assert response.status_code == 403
    assert counts(router) == before
    token = strict.get("/routers/checkout/").context["csrf_token"]
    response = strict.post(
        "/routers/checkout/phase/",
        {"phase": "monitoring", "expected_revision": 1},
        HTTP_X_CSRFTOKEN=str(token),
        **HX,
    )
    assert response.status_code == 200
    assert counts(router)[0] == before[0] + 1


# --- Overview without traffic -----------------------------------------------------------------


def test_overview__no_traffic_today__dashes_not_zeroes(operator_client, router):
    body = operator_client.get("/").content.decode()
    # The selector's defaults for a quiet day are zeros: shown, they read as a 0 % outage.
    assert "0.0 %" not in body and "$0.00" not in body
    assert body.count('title="No traffic today"') == 2  # savings and success
    assert body.count('<span class="visually-hidden">no traffic today</span>') == 2


def test_overview__stats_unavailable__dashes_say_so(operator_client, router, monkeypatch):
    import dashboard.views.overview

    def broken(**kwargs):
        raise RuntimeError("tracking is down")

    monkeypatch.setattr(dashboard.views.overview, "overview_stats", broken)
    response = operator_client.get("/")
    assert response.status_code == 200
    assert response.content.decode().count('title="Figures unavailable"') == 2


# --- Back button: htmx history restore ------------------------------------------------------------

RESTORE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_HISTORY_RESTORE_REQUEST": "true"}


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("/audit/?action=rollback", 'id="audit-results"'),
        ("/audit/?page=1", 'id="audit-results"'),
        ("/routers/checkout/savings/?days=30", 'id="savings-body"'),
        ("/", 'id="router-table"'),
        ("/routers/checkout/", 'id="router-panel"'),
    ],
)
def test_page__htmx_history_restore__full_page(operator_client, router, url, part):
    partial = operator_client.get(url, **HX)
    assert "<html" not in partial.content.decode() and part in partial.content.decode()
    # Back after hx-push-url, history cache missed: htmx swaps this answer in for the whole
    # body, so it must be the page with its header and navigation, not the partial.
    response = operator_client.get(url, **RESTORE)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith("<!doctype html>") and '<header class="topbar">' in body and part in body
    # A cached partial must never answer a restore (nor a restore a partial request).
    assert {"HX-Request", "HX-History-Restore-Request"} <= {
        v.strip() for v in response["Vary"].split(",")
    }


# --- Accessibility: ids and what aria-describedby points at -----------------------------------


def assert_ids_unique_and_described(body: str) -> None:
    ids = re.findall(r'\sid="([^"]+)"', body)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicates == [], duplicates
    for value in re.findall(r'aria-describedby="([^"]+)"', body):
        for ref in value.split():
            assert ref in ids, f"aria-describedby points at missing id {ref!r}"


def test_router_page__ids_unique_and_help_text_described(operator_client, router):
    body = operator_client.get("/routers/checkout/").content.decode()
    assert_ids_unique_and_described(body)
    # Django 5.2 points the input at <id>_helptext; the help text must carry that id.
    assert 'aria-describedby="id_threshold_helptext"' in body
    assert 'id="id_threshold_helptext"' in body


def test_config__bad_input__error_and_help_described(operator_client, router):
    response = operator_client.post(
        "/routers/checkout/config/", _config_post(current(router), threshold="abc"), **HX
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'aria-describedby="id_threshold_helptext id_threshold_error"' in body
    assert 'aria-invalid="true"' in body
    assert_ids_unique_and_described(body)


def test_kill_switch__reason_with_two_errors__one_error_id(operator_client, router):
    response = operator_client.post(
        "/routers/checkout/kill-switch/",
        {"engaged": "true", "reason": "x" * 2001, "expected_revision": 1},
        **HX,
    )
    assert response.status_code == 400
    body = response.content.decode()
    # Too long, and then (the field being dropped) no reason: two messages, one container.
    assert "at most 2000 characters" in body and "say why you engage" in body
    assert body.count('id="id_kill_reason_error"') == 1
    assert 'aria-describedby="id_kill_reason_error"' in body
    assert_ids_unique_and_described(body)


def test_flag__bad_rollout__error_described(operator_client, router):
    response = operator_client.post(
        "/routers/checkout/flags/routellm_enabled/",
        {"enabled": "on", "rollout_percent": "101", "expected_revision": 1},
        **HX,
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'aria-describedby="id_flag_routellm_enabled_rollout_percent_error"' in body
    assert_ids_unique_and_described(body)
