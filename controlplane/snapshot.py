"""Snapshot: the full published state of a router, as plain data (what a revision holds)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from routing.config import default_config_dict
from routing.evaluation import FLAG_NAMES

if TYPE_CHECKING:
    from controlplane.models import ConfigRevision

FlagStates = dict[str, dict[str, Any]]


def flags_off() -> FlagStates:
    return {name: {"enabled": False, "rollout_percent": 0} for name in FLAG_NAMES}


@dataclass(frozen=True)
class Snapshot:
    config: dict[str, Any] = field(default_factory=default_config_dict)
    flags: FlagStates = field(default_factory=flags_off)
    phase: str = "disabled"
    phase_domain: str = ""
    kill_switch: bool = False
    kill_switch_reason: str = ""
    # The running A/B experiment's document entry (controlplane.experiments), or None.
    experiment: dict[str, Any] | None = None

    @classmethod
    def of(cls, revision: ConfigRevision) -> Snapshot:
        return cls(
            config=copy.deepcopy(revision.config),
            flags=revision.flags_dict(),
            phase=revision.phase,
            phase_domain=revision.phase_domain,
            kill_switch=revision.kill_switch,
            kill_switch_reason=revision.kill_switch_reason,
            experiment=copy.deepcopy(revision.experiment),
        )

    def evolve(self, **changes: Any) -> Snapshot:
        return replace(self, **changes)

    def with_config(self, **changes: Any) -> Snapshot:
        return replace(self, config={**copy.deepcopy(self.config), **changes})

    def config_changes(self, values: dict[str, Any]) -> dict[str, Any]:
        """The entries of `values` that differ from this snapshot's config."""
        return {key: value for key, value in values.items() if self.config.get(key) != value}

    def with_flags(self, changes: FlagStates) -> Snapshot:
        flags = copy.deepcopy(self.flags)
        for name, state in changes.items():
            flags[name] = {**flags.get(name, {}), **state}
        return replace(self, flags=flags)

    def as_dict(self) -> dict[str, Any]:
        state = {
            "config": self.config,
            "flags": self.flags,
            "phase": self.phase,
            "phase_domain": self.phase_domain,
            "kill_switch": self.kill_switch,
            "kill_switch_reason": self.kill_switch_reason,
        }
        if self.experiment is not None:  # absent, not null, so older diffs read the same
            state["experiment"] = self.experiment
        return state

    def diff(self, after: Snapshot) -> dict[str, dict[str, Any]]:
        """What changed from self to `after`, as {"config.threshold": {"before", "after"}}."""
        changes: dict[str, dict[str, Any]] = {}
        _diff_into(changes, "", self.as_dict(), after.as_dict())
        return changes


_MISSING = object()


def _diff_into(out: dict[str, dict[str, Any]], prefix: str, before: Any, after: Any) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in list(before) + [k for k in after if k not in before]:
            path = f"{prefix}.{key}" if prefix else str(key)
            _diff_into(out, path, before.get(key, _MISSING), after.get(key, _MISSING))
        return
    if before != after:
        out[prefix] = {
            "before": None if before is _MISSING else before,
            "after": None if after is _MISSING else after,
        }
