"""Stand-ins for what a DomainRouter talks to, so tests read exactly what it did."""

from __future__ import annotations

from typing import Any


class RecordingTracker:
    """Keeps the calls, so a test can read exactly what the router reported."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def track_routing_decision(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        return f"event-{len(self.calls)}"


class DocumentFlags:
    """The part of FeatureFlags a DomainRouter reads, over a live document a test may swap."""

    is_remote = True
    remote = None

    def __init__(self, document: dict[str, Any]) -> None:
        self.current = document

    def document(self) -> dict[str, Any]:
        return self.current
