"""The one flag rule (README: Rollout phases), table-driven: the SDK and server share it."""

from __future__ import annotations

import hashlib

import pytest

from routing.evaluation import (
    DOMAIN_FLAGS,
    FLAG_NAMES,
    KILLABLE_FLAGS,
    ROUTELLM_COST_TRACKING,
    ROUTELLM_ENABLED,
    ROUTELLM_PERFORMANCE_MONITORING,
    bucket,
    flag_on,
    is_flag_enabled,
    safe_default_document,
    should_route,
)

TECH = DOMAIN_FLAGS["technical"]


def doc(
    *,
    kill: bool = False,
    enabled: bool = True,
    per_domain: bool = True,
    overrides: dict | None = None,
    **flags: int,
) -> dict:
    """A flags document; `flags` maps a flag name to its rollout percent (on when given)."""
    return {
        "kill_switch": kill,
        "config": {
            "enabled": enabled,
            "domain_specific_routing": per_domain,
            "domain_routing_overrides": overrides or {},
        },
        "flags": {
            name: {"enabled": name in flags, "rollout_percent": flags.get(name, 0)}
            for name in FLAG_NAMES
        },
    }


def test_bucket__fixed_values__same_on_every_machine():
    assert bucket("routellm_enabled", "user-1") == 14
    assert bucket("routellm_technical_domain", "user-1") == 18
    assert bucket("routellm_enabled", "user-2") == 80
    digest = hashlib.sha256(b"routellm_enabled:user-1").hexdigest()
    assert bucket("routellm_enabled", "user-1") == int(digest[:8], 16) % 100


@pytest.mark.parametrize(
    ("state", "key", "expected"),
    [
        (None, "user-1", False),
        ({"enabled": False, "rollout_percent": 100}, "user-1", False),
        ({"enabled": True, "rollout_percent": 100}, None, True),
        ({"enabled": True, "rollout_percent": 99}, None, False),  # no key: only 100 % is on
        ({"enabled": True, "rollout_percent": 0}, "user-1", False),
        ({"enabled": True, "rollout_percent": 14}, "user-1", False),  # bucket 14 is not < 14
        ({"enabled": True, "rollout_percent": 15}, "user-1", True),
        ({"enabled": True, "rollout_percent": 80}, "user-2", False),
        ({"enabled": True, "rollout_percent": 81}, "user-2", True),
    ],
)
def test_flag_on__table(state, key, expected):
    assert flag_on(state, ROUTELLM_ENABLED, key) is expected


@pytest.mark.parametrize(
    ("document", "domain", "key", "expected"),
    [
        # Kill switch beats everything.
        (doc(kill=True, routellm_enabled=100), "technical", "user-1", False),
        (doc(kill=True, **{TECH: 100}), "technical", "user-1", False),
        # config.enabled off: no routing whatever the flags say.
        (doc(enabled=False, routellm_enabled=100), "technical", "user-1", False),
        # routellm_enabled with its rollout percent (user-1's bucket is 14).
        (doc(routellm_enabled=100), None, "user-1", True),
        (doc(routellm_enabled=15), None, "user-1", True),
        (doc(routellm_enabled=14), None, "user-1", False),
        (doc(routellm_enabled=100, per_domain=False), "legal", "user-1", True),
        # The domain flag counts only with domain_specific_routing (technical bucket: 18).
        (doc(**{TECH: 100}), "technical", "user-1", True),
        (doc(**{TECH: 19}), "technical", "user-1", True),
        (doc(**{TECH: 18}), "technical", "user-1", False),
        (doc(per_domain=False, **{TECH: 100}), "technical", "user-1", False),
        (doc(**{TECH: 100}), "legal", "user-1", False),
        (doc(**{TECH: 100}), None, "user-1", False),
        (doc(**{TECH: 100}), "general", "user-1", False),
        # ...and only if the domain's override is not disabled.
        (doc(overrides={"technical": {"enabled": False}}, **{TECH: 100}), "technical", "u", False),
        (doc(overrides={"technical": {"enabled": True}}, **{TECH: 100}), "technical", "u", True),
        # routellm_enabled wins over a disabled domain override.
        (
            doc(overrides={"technical": {"enabled": False}}, routellm_enabled=100),
            "technical",
            "u",
            True,
        ),
        # Nothing on: no routing.
        (doc(), "technical", "user-1", False),
        (safe_default_document(), "technical", "user-1", False),
    ],
)
def test_should_route__table(document, domain, key, expected):
    assert should_route(document, domain, key) is expected


@pytest.mark.parametrize("flag", FLAG_NAMES)
def test_is_flag_enabled__kill_switch__only_routing_flags_forced_off(flag):
    document = doc(kill=True, **{name: 100 for name in FLAG_NAMES})

    assert is_flag_enabled(document, flag, "user-1") is (flag not in KILLABLE_FLAGS)


def test_kill_switch__tracking_and_monitoring_keep_running():
    document = doc(kill=True, **{ROUTELLM_COST_TRACKING: 100, ROUTELLM_PERFORMANCE_MONITORING: 100})

    assert is_flag_enabled(document, ROUTELLM_COST_TRACKING) is True
    assert is_flag_enabled(document, ROUTELLM_PERFORMANCE_MONITORING) is True


def test_rollout__sticky_per_key_and_close_to_the_percent():
    document = doc(routellm_enabled=30)
    keys = [f"user-{i}" for i in range(2000)]

    first = [is_flag_enabled(document, ROUTELLM_ENABLED, k) for k in keys]
    again = [is_flag_enabled(document, ROUTELLM_ENABLED, k) for k in keys]

    assert first == again
    assert 0.26 < sum(first) / len(keys) < 0.34


def test_rollout__raising_the_percent_keeps_everyone_already_in():
    low = doc(routellm_enabled=20)
    high = doc(routellm_enabled=50)
    keys = [f"k{i}" for i in range(500)]

    assert all(
        is_flag_enabled(high, ROUTELLM_ENABLED, k)
        for k in keys
        if is_flag_enabled(low, ROUTELLM_ENABLED, k)
    )


def test_document_errors__valid_documents_pass__newer_fields_allowed():
    from routing.evaluation import document_errors

    document = safe_default_document()
    assert document_errors(document) == []
    document["config"]["a_field_a_newer_server_adds"] = [1, 2]
    document["flags"]["a_flag_a_newer_server_adds"] = {"enabled": True, "rollout_percent": 5}
    document["phase_domain"] = None
    assert document_errors(document) == []


@pytest.mark.parametrize(
    "document",
    [
        None,
        [],
        {**safe_default_document(), "revision": "7"},
        {**safe_default_document(), "revision": True},
        {**safe_default_document(), "config": None},
        {**safe_default_document(), "flags": []},
        {**safe_default_document(), "flags": {ROUTELLM_ENABLED: {"enabled": True}}},
        {**safe_default_document(), "config": {"domain_routing_overrides": {"general": {}}}},
    ],
)
def test_document_errors__malformed__reported(document):
    from routing.evaluation import document_errors

    assert document_errors(document)
