"""Outcome batches: the envelope of `POST events/outcomes` around the one outcome schema
(`routing.events.OutcomeIn`, which the SDK validates with too).

An outcome is what a routed call turned out to be (tokens, latency of the model call, success,
error, a 0-1 quality score), sent after its event by `event_id`. `validate_outcomes` turns a
decoded `{"outcomes": [...]}` body into (valid outcomes with their index, rejected items with
field errors). Omitted and null fields mean "not reported": they leave the event's value as is.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from routing.events import OUTCOME_FIELDS, OutcomeIn, validate_outcome
from tracking.events import BatchError, BatchTooLarge

MAX_OUTCOMES_PER_BATCH = 1000


def outcome_digest(outcome: OutcomeIn) -> bytes:
    """SHA-256 of the reported values: equal for a retry of this outcome, different for another
    outcome of the same event (ints and floats are normalised by the schema)."""
    values = [getattr(outcome, name) for name in OUTCOME_FIELDS]
    return hashlib.sha256(msgspec.json.encode(values)).digest()


def validate_outcomes(body: Any) -> tuple[list[tuple[int, OutcomeIn]], list[dict[str, Any]]]:
    """([(index, valid outcome)], rejected [{"index", "errors"}]); raises BatchError (400) for a
    bad envelope, BatchTooLarge (413) for more than MAX_OUTCOMES_PER_BATCH items."""
    if not isinstance(body, dict):
        raise BatchError({"body": ['Expected a JSON object: {"outcomes": [...]}.']})
    items = body.get("outcomes")
    if not isinstance(items, list):
        raise BatchError({"outcomes": ["Expected a list of outcomes."]})
    if len(items) > MAX_OUTCOMES_PER_BATCH:
        raise BatchTooLarge(
            {
                "outcomes": [
                    f"At most {MAX_OUTCOMES_PER_BATCH} outcomes per request; got {len(items)}."
                ]
            }
        )
    valid: list[tuple[int, OutcomeIn]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        outcome, errors = validate_outcome(item)
        if outcome is None:
            rejected.append({"index": index, "errors": errors})
        else:
            valid.append((index, outcome))
    return valid, rejected
