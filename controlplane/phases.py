"""Rollout phases as presets over a snapshot (README, "Rollout phases, kill switch, rollback")."""

from __future__ import annotations

import copy

from controlplane.models import PHASE_ORDER, Phase
from controlplane.snapshot import Snapshot
from routing.config import KNOWN_DOMAINS
from routing.evaluation import (
    DOMAIN_FLAGS,
    FLAG_NAMES,
    KILLABLE_FLAGS,
    ROUTELLM_COST_TRACKING,
    ROUTELLM_ENABLED,
    ROUTELLM_PERFORMANCE_MONITORING,
)

ON = {"enabled": True, "rollout_percent": 100}
OFF = {"enabled": False, "rollout_percent": 0}
WATCHING = {ROUTELLM_COST_TRACKING: ON, ROUTELLM_PERFORMANCE_MONITORING: ON}


class PhaseError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def apply_phase(snapshot: Snapshot, phase: str, domain: str | None = None) -> Snapshot:
    """The snapshot with `phase`'s preset applied; the kill switch is left as it is."""
    if phase not in PHASE_ORDER:
        raise PhaseError("phase", f"unknown phase {phase!r} (known: {', '.join(PHASE_ORDER)})")
    if domain is not None and domain not in KNOWN_DOMAINS:
        raise PhaseError("domain", f"unknown domain {domain!r} (known: {', '.join(KNOWN_DOMAINS)})")
    if phase == Phase.DISABLED:
        return snapshot.with_config(enabled=False).evolve(
            flags={name: dict(OFF) for name in FLAG_NAMES}, phase=phase, phase_domain=""
        )
    watching = snapshot.with_config(
        cost_tracking_enabled=True, performance_monitoring_enabled=True
    ).with_flags(WATCHING)
    if phase == Phase.MONITORING:
        return (
            watching.with_config(enabled=False)
            .with_flags({name: dict(OFF) for name in KILLABLE_FLAGS})
            .evolve(phase=phase, phase_domain="")
        )
    if phase == Phase.SINGLE_DOMAIN:
        if not domain:
            raise PhaseError("domain", "single_domain needs a domain")
        return (
            _route_domain(watching, domain)
            .with_flags({ROUTELLM_ENABLED: dict(OFF)})
            .evolve(phase=phase, phase_domain=domain)
        )
    # full keeps the current domain, if any (or takes the one given).
    domain = domain or snapshot.phase_domain or None
    routed = (
        _route_domain(watching, domain)
        if domain
        else watching.with_config(enabled=True, domain_specific_routing=True)
    )
    return routed.with_flags({ROUTELLM_ENABLED: dict(ON)}).evolve(
        phase=phase, phase_domain=domain or ""
    )


def _route_domain(snapshot: Snapshot, domain: str) -> Snapshot:
    overrides = copy.deepcopy(snapshot.config.get("domain_routing_overrides") or {})
    overrides[domain] = {**overrides.get(domain, {}), "enabled": True}
    flags = {flag: dict(ON if d == domain else OFF) for d, flag in DOMAIN_FLAGS.items()}
    return snapshot.with_config(
        enabled=True, domain_specific_routing=True, domain_routing_overrides=overrides
    ).with_flags(flags)


def emergency_snapshot(snapshot: Snapshot, reason: str) -> Snapshot:
    """Kill switch engaged, routing off everywhere, tracking and monitoring kept on."""
    return (
        snapshot.with_config(
            enabled=False, cost_tracking_enabled=True, performance_monitoring_enabled=True
        )
        .with_flags({name: dict(OFF) for name in KILLABLE_FLAGS})
        .with_flags(WATCHING)
        .evolve(
            kill_switch=True, kill_switch_reason=reason, phase=Phase.MONITORING, phase_domain=""
        )
    )


def is_lower(phase: str, than: str) -> bool:
    return PHASE_ORDER[phase] < PHASE_ORDER[than]
