"""The flag rule routers and the control plane share (README: "Rollout phases, kill switch,
rollback").

Pure functions over the flags document (`{"kill_switch", "config", "flags"}`), so the SDK, the
server and the dashboard evaluate a flag the same way on every machine and Python version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from routing.config import KNOWN_DOMAINS

ROUTELLM_ENABLED = "routellm_enabled"
ROUTELLM_COST_TRACKING = "routellm_cost_tracking"
ROUTELLM_PERFORMANCE_MONITORING = "routellm_performance_monitoring"
ROUTELLM_DYNAMIC_THRESHOLD = "routellm_dynamic_threshold"
ROUTELLM_A_B_TESTING = "routellm_a_b_testing"

DOMAIN_FLAGS: dict[str, str] = {domain: f"routellm_{domain}_domain" for domain in KNOWN_DOMAINS}
FLAG_NAMES: tuple[str, ...] = (
    ROUTELLM_ENABLED,
    ROUTELLM_COST_TRACKING,
    ROUTELLM_PERFORMANCE_MONITORING,
    *DOMAIN_FLAGS.values(),
    ROUTELLM_DYNAMIC_THRESHOLD,
    ROUTELLM_A_B_TESTING,
)
# Flags the kill switch forces off; tracking and monitoring keep running so operators can see.
KILLABLE_FLAGS: frozenset[str] = frozenset({ROUTELLM_ENABLED, *DOMAIN_FLAGS.values()})


def bucket(flag: str, key: str) -> int:
    """A stable 0..99 bucket for (flag, key): the same on every machine and Python version."""
    digest = hashlib.sha256(f"{flag}:{key}".encode()).hexdigest()
    return int(digest[:8], 16) % 100


def flag_on(state: Mapping[str, Any] | None, flag: str, key: str | None = None) -> bool:
    """Whether a raw flag state is on for `key`; with no key only 100 % counts as on."""
    if not state or not state.get("enabled"):
        return False
    percent = int(state.get("rollout_percent", 0))
    if key is None:
        return percent >= 100
    return bucket(flag, key) < percent


def is_flag_enabled(document: Mapping[str, Any], flag: str, key: str | None = None) -> bool:
    """A flag as a router sees it: raw state, with the kill switch forcing routing flags off."""
    if document.get("kill_switch") and flag in KILLABLE_FLAGS:
        return False
    return flag_on(document.get("flags", {}).get(flag), flag, key)


def should_route(document: Mapping[str, Any], domain: str | None, key: str | None = None) -> bool:
    """Whether a request in `domain` goes through RouteLLM (else it takes the default model).

    Kill switch beats everything; then config.enabled; then routellm_enabled, or, with
    domain_specific_routing, the domain's flag and its override not disabled.
    """
    if document.get("kill_switch"):
        return False
    config = document.get("config", {})
    if not config.get("enabled"):
        return False
    flags = document.get("flags", {})
    if flag_on(flags.get(ROUTELLM_ENABLED), ROUTELLM_ENABLED, key):
        return True
    if not config.get("domain_specific_routing") or domain not in DOMAIN_FLAGS:
        return False
    flag = DOMAIN_FLAGS[domain]
    override = config.get("domain_routing_overrides", {}).get(domain) or {}
    if override.get("enabled") is False:
        return False
    return flag_on(flags.get(flag), flag, key)


def document_errors(value: object) -> list[str]:
    """Every problem with a flags document (empty when it is safe to decide on).

    The rule above trusts the document's shape, so the SDK checks a whole document before using
    it (server answer, disk cache or bootstrap file) and rejects a bad one whole: one wrong
    value must cost a revision, never a router's request. Config fields a newer server may add
    are ignored, and absent ones are no error (the rule reads them as off).
    """
    from routing.config import CONFIG_FIELDS, config_errors

    if not isinstance(value, dict):
        return ["not a JSON object"]
    errors: list[str] = []
    revision = value.get("revision")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
        errors.append("revision: must be an integer >= 0")
    if not isinstance(value.get("kill_switch", False), bool):
        errors.append("kill_switch: must be a boolean")
    if not isinstance(value.get("router"), str | None):
        errors.append("router: must be a string")
    config = value.get("config")
    if isinstance(config, dict):
        known = {name: v for name, v in config.items() if name in CONFIG_FIELDS}
        for name, messages in config_errors(known, partial=True).items():
            errors.extend(f"config.{name}: {message}" for message in messages)
    else:
        errors.append("config: must be an object")
    flags = value.get("flags")
    if isinstance(flags, dict):
        for name, state in flags.items():
            if not isinstance(state, dict):
                errors.append(f"flags.{name}: must be an object")
                continue
            if not isinstance(state.get("enabled"), bool):
                errors.append(f"flags.{name}.enabled: must be a boolean")
            percent = state.get("rollout_percent")
            if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
                errors.append(f"flags.{name}.rollout_percent: must be an integer 0-100")
    else:
        errors.append("flags: must be an object")
    from routing.experiments import experiment_errors

    errors.extend(experiment_errors(value.get("experiment")))
    return errors


def safe_default_document() -> dict[str, Any]:
    """What a router uses with no control plane and no cache: routing off, every flag off."""
    from routing.config import default_config_dict

    return {
        "router": None,
        "revision": 0,
        "phase": "disabled",
        "kill_switch": False,
        "config": default_config_dict(),
        "flags": {name: {"enabled": False, "rollout_percent": 0} for name in FLAG_NAMES},
        "experiment": None,
    }
