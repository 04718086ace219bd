from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction

from controlplane import services
from controlplane.models import AuditEntry, ConfigRevision
from controlplane.selectors import current_revision
from controlplane.snapshot import Snapshot
from routing.config import default_config_dict
from routing.evaluation import DOMAIN_FLAGS, FLAG_NAMES


def _current(router):
    router.refresh_from_db()
    return current_revision(router=router)


def test_create_router__starts_disabled_at_revision_1_with_every_flag_off(router):
    revision = _current(router)
    assert revision.number == 1
    assert revision.phase == "disabled"
    assert revision.kill_switch is False
    assert revision.config["threshold"] == 0.11593
    assert revision.config["router_type"] == "mf"
    assert revision.flags_dict() == {
        n: {"enabled": False, "rollout_percent": 0} for n in FLAG_NAMES
    }
    assert AuditEntry.objects.filter(router=router, action="router.create").count() == 1


def test_create_router__duplicate_slug__field_error(router, actor):
    with pytest.raises(ValidationError) as exc:
        services.create_router(slug="checkout", actor=actor)
    assert "slug" in exc.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("phase", "domain", "enabled", "on", "routing_flags_on"),
    [
        ("disabled", None, False, set(), set()),
        (
            "monitoring",
            None,
            False,
            {"routellm_cost_tracking", "routellm_performance_monitoring"},
            set(),
        ),
        (
            "single_domain",
            "technical",
            True,
            {
                "routellm_cost_tracking",
                "routellm_performance_monitoring",
                "routellm_technical_domain",
            },
            {"routellm_technical_domain"},
        ),
        (
            "full",
            "legal",
            True,
            {
                "routellm_cost_tracking",
                "routellm_performance_monitoring",
                "routellm_legal_domain",
                "routellm_enabled",
            },
            {"routellm_legal_domain", "routellm_enabled"},
        ),
    ],
)
def test_set_phase__applies_preset(router, actor, phase, domain, enabled, on, routing_flags_on):
    revision = services.set_phase(router=router, phase=phase, domain=domain, actor=actor)
    flags = revision.flags_dict()
    assert revision.phase == phase
    assert revision.config["enabled"] is enabled
    assert {n for n, s in flags.items() if s["enabled"]} == on
    assert all(flags[n]["rollout_percent"] == 100 for n in on)
    if domain:
        assert revision.phase_domain == domain
        assert revision.config["domain_routing_overrides"][domain]["enabled"] is True
        assert revision.config["domain_specific_routing"] is True


def test_set_phase__every_transition_from_every_phase(router, actor):
    phases = [
        ("disabled", None),
        ("monitoring", None),
        ("single_domain", "medical"),
        ("full", None),
    ]
    for start, start_domain in phases:
        for target, target_domain in phases:
            services.set_phase(router=router, phase=start, domain=start_domain, actor=actor)
            revision = services.set_phase(
                router=router, phase=target, domain=target_domain, actor=actor
            )
            flags = revision.flags_dict()
            assert revision.phase == target
            routing_on = revision.config["enabled"]
            assert routing_on is (target in ("single_domain", "full"))
            assert flags["routellm_enabled"]["enabled"] is (target == "full")
            # full keeps the domain chosen before it, if any
            routed_domain = target == "single_domain" or (
                target == "full" and start in ("single_domain", "full")
            )
            assert revision.phase_domain == ("medical" if routed_domain else "")
            if routed_domain:
                others = [f for d, f in DOMAIN_FLAGS.items() if d != "medical"]
                assert not any(flags[f]["enabled"] for f in others)


def test_full_without_a_domain__routes_everything(router, actor):
    revision = services.set_phase(router=router, phase="full", actor=actor)
    assert revision.phase_domain == ""
    assert revision.flags_dict()["routellm_enabled"] == {"enabled": True, "rollout_percent": 100}


def test_set_phase__single_domain_without_domain__field_error_and_nothing_written(router, actor):
    with pytest.raises(ValidationError) as exc:
        services.set_phase(router=router, phase="single_domain", actor=actor)
    assert "domain" in exc.value.message_dict
    assert _current(router).number == 1


def test_set_phase__unknown_phase_or_domain__field_error(router, actor):
    with pytest.raises(ValidationError) as exc:
        services.set_phase(router=router, phase="turbo", actor=actor)
    assert "phase" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.set_phase(router=router, phase="single_domain", domain="finance", actor=actor)
    assert "domain" in exc.value.message_dict
    assert _current(router).number == 1


def test_revisions_are_numbered_per_router(router, actor):
    other = services.create_router(slug="support", actor=actor)
    services.set_flag(router=router, name="routellm_enabled", enabled=True, actor=actor)
    services.set_flag(router=router, name="routellm_enabled", enabled=False, actor=actor)
    services.set_flag(router=other, name="routellm_enabled", enabled=True, actor=actor)
    assert list(router.revisions.values_list("number", flat=True).order_by("number")) == [1, 2, 3]
    assert list(other.revisions.values_list("number", flat=True).order_by("number")) == [1, 2]


def test_set_flag__keeps_phase_label_and_audits_diff(router, actor):
    services.set_phase(router=router, phase="monitoring", actor=actor)
    revision = services.set_flag(
        router=router, name="routellm_a_b_testing", enabled=True, rollout_percent=25, actor=actor
    )
    assert revision.phase == "monitoring"
    entry = AuditEntry.objects.filter(router=router).first()
    assert entry.action == "flag.set"
    assert entry.actor == "user:test-operator"
    assert entry.source_ip == "127.0.0.1"
    assert entry.revision_number == revision.number
    assert entry.diff == {
        "flags.routellm_a_b_testing.enabled": {"before": False, "after": True},
        "flags.routellm_a_b_testing.rollout_percent": {"before": 0, "after": 25},
    }


@pytest.mark.parametrize("percent", [-1, 101, True, "50"])
def test_set_flag__bad_percent__field_error(router, actor, percent):
    with pytest.raises(ValidationError) as exc:
        services.set_flag(
            router=router,
            name="routellm_enabled",
            enabled=True,
            rollout_percent=percent,
            actor=actor,
        )
    assert "rollout_percent" in exc.value.message_dict
    assert _current(router).number == 1


def test_set_flag__unknown_flag__field_error(router, actor):
    with pytest.raises(ValidationError) as exc:
        services.set_flag(router=router, name="routellm_turbo", enabled=True, actor=actor)
    assert "name" in exc.value.message_dict


def test_update_config__audits_exact_diff(router, actor):
    revision = services.update_config(
        router=router, changes={"threshold": 0.3, "router_type": "random"}, actor=actor
    )
    assert revision.config["threshold"] == 0.3
    assert revision.config["router_type"] == "random"
    entry = AuditEntry.objects.filter(router=router).first()
    assert entry.diff == {
        "config.threshold": {"before": 0.11593, "after": 0.3},
        "config.router_type": {"before": "mf", "after": "random"},
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": "0.2"}, "threshold"),
        ({"router_type": "gpt"}, "router_type"),
        ({"max_retry_attempts": -1}, "max_retry_attempts"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"cost_optimization_target": 2}, "cost_optimization_target"),
        ({"metrics_retention_days": 0}, "metrics_retention_days"),
        (
            {"domain_routing_overrides": {"finance": {"enabled": True}}},
            "domain_routing_overrides.finance",
        ),
        ({"enabled": "yes"}, "enabled"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_update_config__bad_value__field_error_and_nothing_written(router, actor, changes, field):
    with pytest.raises(ValidationError) as exc:
        services.update_config(router=router, changes=changes, actor=actor)
    assert field in exc.value.message_dict
    assert _current(router).number == 1
    assert ConfigRevision.objects.filter(router=router).count() == 1


def test_update_config__put_needs_every_field(router, actor):
    with pytest.raises(ValidationError) as exc:
        services.update_config(
            router=router, changes={"threshold": 0.2}, partial=False, actor=actor
        )
    assert "strong_model" in exc.value.message_dict


def test_stale_expected_revision__raises_and_writes_nothing(router, actor):
    services.set_flag(router=router, name="routellm_enabled", enabled=True, actor=actor)
    with pytest.raises(services.StaleRevision) as exc:
        services.update_config(
            router=router, changes={"threshold": 0.5}, actor=actor, expected_revision=1
        )
    assert exc.value.current == 2
    assert _current(router).number == 2
    assert _current(router).config["threshold"] == 0.11593


def test_edit_config__only_changed_fields_written__unchanged_writes_nothing(router, actor):
    values = dict(_current(router).config)
    unchanged = services.edit_config(router=router, values=values, actor=actor)
    assert unchanged.number == 1 and unchanged.changed is False
    assert _current(router).number == 1
    revision = services.edit_config(
        router=router, values={**values, "threshold": 0.3}, actor=actor, expected_revision=1
    )
    assert revision.number == 2 and revision.config["threshold"] == 0.3
    entry = AuditEntry.objects.filter(router=router).latest("id")
    assert entry.action == "config.update" and list(entry.diff) == ["config.threshold"]
    with pytest.raises(services.StaleRevision):
        services.edit_config(router=router, values=values, actor=actor, expected_revision=1)
    assert _current(router).number == 2


def test_rollback_to__copies_config_flags_phase_and_keeps_kill_switch(router, actor):
    services.update_config(router=router, changes={"threshold": 0.42}, actor=actor)
    services.set_phase(router=router, phase="single_domain", domain="technical", actor=actor)
    target = _current(router)
    services.set_phase(router=router, phase="full", actor=actor)
    services.update_config(router=router, changes={"threshold": 0.9}, actor=actor)
    services.set_kill_switch(router=router, engaged=True, reason="bad answers", actor=actor)

    revision = services.rollback_to(router=router, number=target.number, actor=actor)

    assert revision.number == 7
    assert revision.restored_from == target.number
    assert revision.config == target.config
    assert revision.flags_dict() == target.flags_dict()
    assert (revision.phase, revision.phase_domain) == ("single_domain", "technical")
    assert revision.kill_switch is True
    assert revision.kill_switch_reason == "bad answers"
    assert AuditEntry.objects.filter(router=router).first().action == "rollback"


def test_rollback_to__unknown_revision__field_error(router, actor):
    with pytest.raises(ValidationError) as exc:
        services.rollback_to(router=router, number=99, actor=actor)
    assert "revision" in exc.value.message_dict


def test_kill_switch__needs_reason_to_engage_and_only_release_turns_it_off(router, actor):
    with pytest.raises(ValidationError):
        services.set_kill_switch(router=router, engaged=True, reason=" ", actor=actor)
    services.set_kill_switch(router=router, engaged=True, reason="incident 42", actor=actor)
    assert services.set_phase(router=router, phase="full", actor=actor).kill_switch is True
    released = services.set_kill_switch(router=router, engaged=False, actor=actor)
    assert released.kill_switch is False
    assert released.phase == "full"


def test_step_back__restores_latest_lower_revision(router, actor):
    services.set_phase(router=router, phase="monitoring", actor=actor)
    services.update_config(router=router, changes={"threshold": 0.33}, actor=actor)
    lower = _current(router)
    services.set_phase(router=router, phase="single_domain", domain="creative", actor=actor)
    services.set_phase(router=router, phase="full", actor=actor)

    back = services.step_back(router=router, actor=actor)
    assert back.phase == "single_domain"
    back = services.step_back(router=router, actor=actor)
    assert back.phase == "monitoring"
    assert back.restored_from == lower.number
    assert back.config == lower.config


def test_step_back__stale_expected_revision__raises_and_writes_nothing(router, actor):
    services.set_phase(router=router, phase="monitoring", actor=actor)
    with pytest.raises(services.StaleRevision) as exc:
        services.step_back(router=router, actor=actor, expected_revision=1)
    assert exc.value.current == 2
    assert _current(router).number == 2
    assert _current(router).phase == "monitoring"


def test_step_back__without_history__applies_lower_preset(router, actor):
    services.set_phase(router=router, phase="full", actor=actor)
    services.set_kill_switch(router=router, engaged=True, reason="x", actor=actor)
    back = services.step_back(router=router, actor=actor)
    # revision 1 (disabled) is the latest lower revision
    assert back.phase == "disabled"
    assert back.kill_switch is True


def test_emergency_rollback__one_revision_routing_off_tracking_on(router, actor):
    services.set_phase(router=router, phase="full", domain="legal", actor=actor)
    revision = services.emergency_rollback(router=router, reason="costs spiking", actor=actor)
    flags = revision.flags_dict()
    assert revision.kill_switch is True
    assert revision.config["enabled"] is False
    assert not flags["routellm_enabled"]["enabled"]
    assert not any(flags[f]["enabled"] for f in DOMAIN_FLAGS.values())
    assert flags["routellm_cost_tracking"]["enabled"]
    assert flags["routellm_performance_monitoring"]["enabled"]
    assert AuditEntry.objects.filter(router=router, action="emergency_rollback").count() == 1


def test_audit_log__database_refuses_update_and_delete(router):
    entry = AuditEntry.objects.filter(router=router).first()
    for statement in (
        lambda: AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten"),
        lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            statement()
    assert AuditEntry.objects.get(pk=entry.pk).reason == ""


def test_audit_log__database_refuses_truncate(router):
    from django.db import connection

    count = AuditEntry.objects.count()
    assert count >= 1
    for statement in (
        "TRUNCATE controlplane_auditentry",
        "TRUNCATE controlplane_router CASCADE",  # reaches the audit log through its foreign key
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                # The test's own inserts left deferred FK checks, which block any TRUNCATE.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(statement)
    assert AuditEntry.objects.count() == count


@pytest.mark.django_db(transaction=True)
def test_audit_log__test_flush_setting__allows_truncate(router):
    # Only the test suite's flush sets it (tests/conftest.py); this test's own teardown flushes.
    from django.db import connection

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL routeplane.allow_audit_truncate = 'on'")
        cursor.execute("TRUNCATE controlplane_auditentry")
    assert AuditEntry.objects.count() == 0


def test_revisions__database_refuses_update(router):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        ConfigRevision.objects.filter(router=router).update(phase="full")


def test_api_key__stored_as_sha256_and_shown_once(router, actor):
    import hashlib

    key, raw = services.create_api_key(router=router, role="router", actor=actor)
    assert raw.startswith("rp_") and len(raw) >= 3 + 43
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(key.__dict__)
    assert key.prefix == raw[:11]


def test_every_write__one_revision_and_one_audit_entry_with_the_exact_diff(router, actor):
    writes = [
        ("phase.set", lambda: services.set_phase(router=router, phase="monitoring", actor=actor)),
        (
            "phase.set",
            lambda: services.set_phase(
                router=router, phase="single_domain", domain="legal", actor=actor
            ),
        ),
        ("config.update", lambda: services.update_config(
            router=router, changes={"threshold": 0.42}, actor=actor, reason="tune"
        )),
        ("flag.set", lambda: services.set_flag(
            router=router, name="routellm_medical_domain", enabled=True, rollout_percent=5,
            actor=actor,
        )),
        ("kill_switch.set", lambda: services.set_kill_switch(
            router=router, engaged=True, reason="bad answers", actor=actor
        )),
        ("rollback", lambda: services.rollback_to(router=router, number=2, actor=actor)),
        ("phase.step_back", lambda: services.step_back(router=router, actor=actor)),
        ("emergency_rollback", lambda: services.emergency_rollback(
            router=router, actor=actor, reason="pager"
        )),
    ]  # fmt: skip
    for action, write in writes:
        before = Snapshot.of(_current(router))
        entries = AuditEntry.objects.count()

        revision = write()

        assert AuditEntry.objects.count() == entries + 1, action
        entry = AuditEntry.objects.order_by("-id").first()
        assert entry.action.startswith(action.split(".")[0]), (action, entry.action)
        assert entry.revision_number == revision.number == _current(router).number
        assert entry.actor == actor.label
        assert entry.diff == before.diff(Snapshot.of(revision)), action
        assert entry.diff, f"{action} changed nothing"
    assert list(router.revisions.order_by("number").values_list("number", flat=True)) == list(
        range(1, len(writes) + 2)
    )


# --- a write that changes nothing publishes nothing -----------------------------------------

UNCHANGED_WRITES = {
    "config-put": lambda r, a: services.update_config(
        router=r, changes=default_config_dict(), partial=False, actor=a
    ),
    "config-patch-same": lambda r, a: services.update_config(
        router=r, changes={"threshold": 0.11593, "router_type": "mf"}, actor=a
    ),
    "config-patch-empty": lambda r, a: services.update_config(router=r, changes={}, actor=a),
    "flag": lambda r, a: services.set_flag(
        router=r, name="routellm_enabled", enabled=False, rollout_percent=0, actor=a
    ),
    "phase": lambda r, a: services.set_phase(router=r, phase="disabled", actor=a),
    "kill-switch-release": lambda r, a: services.set_kill_switch(router=r, engaged=False, actor=a),
    "rollback-to-current": lambda r, a: services.rollback_to(router=r, number=1, actor=a),
}


@pytest.mark.parametrize("write", UNCHANGED_WRITES.values(), ids=UNCHANGED_WRITES.keys())
def test_unchanged_write__current_revision_unchanged_no_revision_no_audit(router, actor, write):
    audit_rows = AuditEntry.objects.count()

    revision = write(router, actor)

    assert (revision.number, revision.changed) == (1, False)
    assert revision.flags_dict()["routellm_enabled"] == {"enabled": False, "rollout_percent": 0}
    assert ConfigRevision.objects.filter(router=router).count() == 1
    assert AuditEntry.objects.count() == audit_rows


def test_changed_write__new_revision_marked_changed(router, actor):
    revision = services.update_config(router=router, changes={"threshold": 0.3}, actor=actor)
    assert (revision.number, revision.changed) == (2, True)
    again = services.update_config(router=router, changes={"threshold": 0.3}, actor=actor)
    assert (again.number, again.changed) == (2, False)
