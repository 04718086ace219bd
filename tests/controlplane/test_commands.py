"""Management commands (README: Management commands): thin wrappers over services."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from controlplane.models import ApiKey, AuditEntry, ConfigRevision, Router
from controlplane.services import hash_key, set_phase, update_config
from routing.config import RouteLLMConfig
from routing.evaluation import DOMAIN_FLAGS

ROOT = Path(__file__).resolve().parents[2]
SEED_YAML = ROOT / "examples" / "config.yaml"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # seed_demo hashes two passwords and the tests log in: PBKDF2 would take seconds here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run(*args: str, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def write_yaml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- create_router ---------------------------------------------------------------------------


def test_create_router__new_slug__revision_1_attributed_to_cli():
    out, _ = run("create_router", "search", "--name", "Search router")

    router = Router.objects.get(slug="search")
    assert router.name == "Search router"
    assert router.current_revision.number == 1
    assert router.current_revision.phase == "disabled"
    assert router.current_revision.actor.startswith("cli:create_router")
    assert "search" in out


def test_create_router__existing_slug__error_and_nothing_written(router):
    with pytest.raises(CommandError, match="slug: .*exists already"):
        run("create_router", router.slug)
    assert Router.objects.count() == 1


def test_create_router__bad_slug__error_names_slug():
    with pytest.raises(CommandError, match="slug"):
        run("create_router", "no spaces allowed")
    assert not Router.objects.exists()


# --- create_api_key ----------------------------------------------------------------------------


def test_create_api_key__router_role__prints_key_once_stores_only_hash(router):
    out, err = run("create_api_key", router.slug, "--role", "router", "--name", "prod")

    raw = out.strip()
    assert raw.startswith("rp_") and "\n" not in raw
    key = ApiKey.objects.get(router=router)
    assert key.key_hash == hash_key(raw)
    assert raw.startswith(key.prefix)
    assert (key.role, key.name) == ("router", "prod")
    assert "shown only once" in err
    stored = [str(v) for v in ApiKey.objects.values_list(*[f.name for f in ApiKey._meta.fields])]
    assert raw not in " ".join(stored)


def test_create_api_key__unknown_role__error_lists_roles(router):
    with pytest.raises(CommandError, match="operator"):
        run("create_api_key", router.slug, "--role", "admin")
    assert not ApiKey.objects.exists()


def test_create_api_key__unknown_router__error_names_it(router):
    with pytest.raises(CommandError, match="no router 'ghost'"):
        run("create_api_key", "ghost", "--role", "viewer")


def test_create_api_key__bad_role_from_shell__nonzero_exit_and_message():
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "demo", "--role", "admin"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert result.returncode != 0
    assert "invalid choice: 'admin'" in result.stderr


# --- import_config / export_config ----------------------------------------------------------


def test_import_config__seed_yaml__config_equals_from_yaml(router, actor):
    update_config(router=router, changes={"threshold": 0.3, "weak_model": "llama"}, actor=actor)

    out, _ = run("import_config", router.slug, str(SEED_YAML))

    router.refresh_from_db()
    revision = router.current_revision
    assert revision.number == 3
    assert revision.config == RouteLLMConfig.from_yaml(SEED_YAML).to_dict()
    assert revision.action == "config.update"
    assert revision.actor.startswith("cli:import_config")
    assert "revision 3" in out


def test_import_config__same_file_twice__second_run_writes_nothing(router, actor):
    update_config(router=router, changes={"threshold": 0.3}, actor=actor)
    first, _ = run("import_config", router.slug, str(SEED_YAML))
    second, _ = run("import_config", router.slug, str(SEED_YAML))

    assert "revision 3" in first
    assert "nothing written" in second
    assert ConfigRevision.objects.filter(router=router).count() == 3


def test_import_config__seed_yaml__keeps_phase_and_flags(router, actor):
    set_phase(router=router, phase="monitoring", actor=actor)
    run("import_config", router.slug, str(SEED_YAML))

    router.refresh_from_db()
    assert router.current_revision.phase == "monitoring"
    assert router.current_revision.flags_dict()["routellm_cost_tracking"]["enabled"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("threshold: 1.5", "threshold"),
        ("router_type: transformer", "router_type"),
        ("max_retry_attempts: -1", "max_retry_attempts"),
        ("timeout_seconds: 0", "timeout_seconds"),
        ("cost_optimization_target: '0.5'", "cost_optimization_target"),
        ("treshold: 0.2", "treshold"),
        (
            "domain_routing_overrides: {finance: {enabled: true}}",
            "domain_routing_overrides.finance",
        ),
    ],
)
def test_import_config__bad_value__error_names_field_nothing_written(router, tmp_path, body, field):
    path = write_yaml(tmp_path, f"routellm:\n  enabled: true\n  {body}\n")

    with pytest.raises(CommandError, match=rf"invalid routellm config: {field}:"):
        run("import_config", router.slug, path)
    assert ConfigRevision.objects.filter(router=router).count() == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_config:\n  default_model: x\n", "no 'routellm:' section"),
        ("routellm: [1, 2]\n", "no 'routellm:' section"),
        ("routellm:\n  enabled: [unclosed\n", "not valid YAML"),
    ],
)
def test_import_config__unreadable_file__clear_error(router, tmp_path, text, message):
    with pytest.raises(CommandError, match=message):
        run("import_config", router.slug, write_yaml(tmp_path, text))
    assert ConfigRevision.objects.filter(router=router).count() == 1


def test_import_config__missing_file__error_names_path(router, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("import_config", router.slug, str(tmp_path / "absent.yaml"))


def test_import_config__merge__keeps_fields_the_file_leaves_out(router, actor, tmp_path):
    update_config(router=router, changes={"metrics_retention_days": 90}, actor=actor)
    path = write_yaml(tmp_path, "routellm:\n  threshold: 0.3\n")

    run("import_config", router.slug, path, "--merge")
    router.refresh_from_db()
    assert router.current_revision.config["threshold"] == 0.3
    assert router.current_revision.config["metrics_retention_days"] == 90

    run("import_config", router.slug, path)  # without --merge: defaults, as from_yaml reads it
    router.refresh_from_db()
    assert router.current_revision.config["metrics_retention_days"] == 30


def test_export_config__then_import__round_trip_is_exact(router, actor, tmp_path):
    changes = {
        "threshold": 0.25,
        "router_type": "bert",
        "strong_model": "gpt-4o",
        "timeout_seconds": 12.5,
        "domain_routing_overrides": {"medical": {"enabled": False, "strong_model": "gpt-4o"}},
    }
    update_config(router=router, changes=changes, actor=actor)
    out, _ = run("export_config", router.slug)
    exported = tmp_path / "exported.yaml"
    exported.write_text(out, encoding="utf-8")

    assert set(yaml.safe_load(out)) == {"routellm"}
    run("create_router", "copy")
    run("import_config", "copy", str(exported))
    copy = Router.objects.get(slug="copy").current_revision
    router.refresh_from_db()
    assert copy.config == router.current_revision.config
    assert RouteLLMConfig.from_yaml(exported).to_dict() == router.current_revision.config

    again, _ = run("import_config", router.slug, str(exported))
    assert "nothing written" in again


def test_export_config__output_option__writes_file(router, tmp_path):
    target = tmp_path / "out.yaml"
    run("export_config", router.slug, "-o", str(target))
    assert yaml.safe_load(target.read_text())["routellm"]["threshold"] == 0.11593


def test_export_config__unknown_router__error():
    with pytest.raises(CommandError, match="no router"):
        run("export_config", "ghost")


# --- emergency_rollback --------------------------------------------------------------------


def test_emergency_rollback__full_phase__kill_switch_on_routing_off(router, actor):
    set_phase(router=router, phase="full", domain="legal", actor=actor)

    out, _ = run("emergency_rollback", router.slug, "--reason", "bad answers in legal")

    router.refresh_from_db()
    revision = router.current_revision
    flags = revision.flags_dict()
    assert revision.kill_switch is True
    assert revision.kill_switch_reason == "bad answers in legal"
    assert revision.config["enabled"] is False
    assert not flags["routellm_enabled"]["enabled"]
    assert not any(flags[f]["enabled"] for f in DOMAIN_FLAGS.values())
    assert flags["routellm_cost_tracking"]["enabled"]
    assert flags["routellm_performance_monitoring"]["enabled"]
    entry = AuditEntry.objects.filter(router=router).first()
    assert (entry.action, entry.reason) == ("emergency_rollback", "bad answers in legal")
    assert entry.actor.startswith("cli:emergency_rollback")
    assert "kill switch" in out


def test_emergency_rollback__blank_reason__error_names_reason(router):
    with pytest.raises(CommandError, match="reason"):
        run("emergency_rollback", router.slug, "--reason", "   ")
    router.refresh_from_db()
    assert router.current_revision.number == 1


def test_emergency_rollback__no_reason__usage_error(router):
    with pytest.raises(CommandError, match="--reason"):
        run("emergency_rollback", router.slug)


# --- list_api_keys / revoke_api_key ---------------------------------------------------------


def test_list_api_keys__keys__shows_prefix_role_never_key(router):
    raw_op, _ = run("create_api_key", router.slug, "--role", "operator", "--name", "ops")
    raw_rt, _ = run("create_api_key", router.slug, "--role", "router")
    run("revoke_api_key", raw_rt.strip()[:11])

    out, _ = run("list_api_keys", router.slug)

    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["PREFIX", "ROLE"]
    assert len(lines) == 3
    for raw in (raw_op.strip(), raw_rt.strip()):
        assert raw not in out and hash_key(raw) not in out
        assert raw[:11] in out
    revoked_line = next(line for line in lines if raw_rt.strip()[:11] in line)
    assert revoked_line.rstrip().endswith(
        ApiKey.objects.get(prefix=raw_rt.strip()[:11]).revoked_at.strftime("%H:%M:%S")
    )


def test_list_api_keys__none__says_so(router):
    out, _ = run("list_api_keys", router.slug)
    assert "no API keys" in out


def test_revoke_api_key__active_key__revoked_audited_idempotent(router):
    raw, _ = run("create_api_key", router.slug, "--role", "viewer")
    prefix = raw.strip()[:11]

    out, _ = run("revoke_api_key", prefix, "--reason", "leaked")
    key = ApiKey.objects.get(prefix=prefix)
    assert key.revoked_at is not None
    assert AuditEntry.objects.filter(action="api_key.revoke", reason="leaked").count() == 1
    assert "Revoked" in out

    again, _ = run("revoke_api_key", prefix)
    assert "already revoked" in again
    assert AuditEntry.objects.filter(action="api_key.revoke").count() == 1


def test_revoke_api_key__unknown_prefix__error():
    with pytest.raises(CommandError, match="no API key with prefix 'rp_nothere'"):
        run("revoke_api_key", "rp_nothere")


# --- seed_demo -----------------------------------------------------------------------------


def test_seed_demo__common_password__refused_no_user_created():
    from django.contrib.auth import get_user_model

    with pytest.raises(CommandError, match="too common"):
        run("seed_demo", "--password", "password123", "--days", "1")
    assert not get_user_model().objects.filter(username="operator").exists()


def test_seed_demo__fresh_database__logins_router_and_operator_keys_revisions(client):
    out, _ = run("seed_demo", "--password", "demo-pass-123", "--days", "1")

    demo = Router.objects.get(slug="demo")
    phases = set(demo.revisions.values_list("phase", flat=True))
    assert {"disabled", "monitoring", "single_domain"} <= phases
    for role in ("router", "operator"):
        key_line = next(line for line in out.splitlines() if f"{role} key" in line)
        raw = key_line.rsplit(" ", 1)[-1]
        key = ApiKey.objects.get(router=demo, role=role)
        assert key.key_hash == hash_key(raw)
        assert raw not in str(list(ApiKey.objects.values()))  # stored as a hash only
    assert client.login(username="operator", password="demo-pass-123")
    assert client.login(username="viewer", password="demo-pass-123")
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    assert users.get(username="operator").groups.filter(name="operator").exists()
    assert users.get(username="viewer").groups.filter(name="viewer").exists()
    assert "password: demo-pass-123" in out


def test_seed_demo__tracking_available__days_of_events_once():
    from tracking.models import Event

    out, _ = run("seed_demo", "--days", "3")
    demo = Router.objects.get(slug="demo")
    events = Event.objects.filter(router=demo)
    count = events.count()
    assert f"Synthetic events: {count} added." in out
    assert count > 200
    days = {ts.date() for ts in events.values_list("timestamp", flat=True)}
    assert len(days) >= 3
    assert events.filter(routing_method="routellm").exists()

    again, _ = run("seed_demo", "--days", "3")
    assert "Synthetic events: 0 added." in again
    assert Event.objects.filter(router=demo).count() == count


def test_seed_demo__run_twice__no_new_revisions_key_or_password(client):
    run("seed_demo", "--password", "first-pass-123", "--days", "1")
    demo = Router.objects.get(slug="demo")
    revisions = demo.revisions.count()

    out, _ = run("seed_demo", "--password", "second-pass-123", "--days", "1")

    assert demo.revisions.count() == revisions
    assert ApiKey.objects.filter(router=demo).count() == 2
    assert "rp_" not in out
    assert "password unchanged" in out
    assert client.login(username="operator", password="first-pass-123")
