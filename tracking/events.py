"""The event schema as the server uses it: defined once in the SDK (routing.events), so a
router and the control plane validate events by the same rules."""

from __future__ import annotations

from routing.events import (
    MAX_ERROR_LENGTH,
    MAX_EVENTS_PER_BATCH,
    MAX_FUTURE,
    NUL_ESCAPE,
    BatchError,
    BatchTooLarge,
    EventIn,
    may_hold_nul,
    primary_domain,
    validate_batch,
    validate_event,
)

__all__ = [
    "MAX_ERROR_LENGTH",
    "MAX_EVENTS_PER_BATCH",
    "MAX_FUTURE",
    "NUL_ESCAPE",
    "BatchError",
    "BatchTooLarge",
    "EventIn",
    "may_hold_nul",
    "primary_domain",
    "validate_batch",
    "validate_event",
]
