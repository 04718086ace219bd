"""Routeplane router SDK: plain Python, no Django. Heavy `routellm` is imported lazily.

`import routing` loads only the config module; the rest (flags poller, tracker, DomainRouter)
is imported on first use through the module `__getattr__` below, and routellm (torch) only when
a DomainRouter is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routing.config import KNOWN_DOMAINS, RouteLLMConfig, RouterType

if TYPE_CHECKING:
    from routing.domain_router import DomainRouter, RoutingDecision
    from routing.flags import FeatureFlags
    from routing.tracker import CostTracker, RoutingMetrics

__all__ = [
    "KNOWN_DOMAINS",
    "CostTracker",
    "DomainRouter",
    "FeatureFlags",
    "RouteLLMConfig",
    "RouterType",
    "RoutingDecision",
    "RoutingMetrics",
]

_LAZY = {
    "FeatureFlags": "routing.flags",
    "CostTracker": "routing.tracker",
    "RoutingMetrics": "routing.tracker",
    "DomainRouter": "routing.domain_router",
    "RoutingDecision": "routing.domain_router",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'routing' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
