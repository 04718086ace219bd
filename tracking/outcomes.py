"""The outcome schema (CONTRACT §7) and its validation: msgspec per item, as for events.

An outcome is what a routed call turned out to be (tokens, latency of the model call, success,
error, a 0-1 quality score), sent after its event by `event_id`. `validate_outcomes` turns a
decoded `{"outcomes": [...]}` body into (valid outcomes with their index, rejected items with
field errors). Omitted and null fields mean "not reported": they leave the event's value as is.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Annotated, Any

import msgspec

from tracking.events import MAX_ERROR_LENGTH, BatchError, BatchTooLarge

MAX_OUTCOMES_PER_BATCH = 1000

NonNegInt = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0, le=1e12)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]

REPORTED_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "success",
    "error",
    "quality",
)


class OutcomeIn(msgspec.Struct):
    event_id: uuid.UUID
    prompt_tokens: NonNegInt | None = None
    completion_tokens: NonNegInt | None = None
    latency_ms: NonNegFloat | None = None
    success: bool | None = None
    error: str | None = None
    quality: Fraction | None = None

    def digest(self) -> bytes:
        """SHA-256 of the reported values: equal for a retry of this outcome, different for
        another outcome of the same event (ints and floats are normalised by the schema)."""
        values = [getattr(self, name) for name in REPORTED_FIELDS]
        return hashlib.sha256(msgspec.json.encode(values)).digest()


_AT_FIELD = re.compile(r"^(?P<message>.*?) - at `\$\.(?P<field>[A-Za-z_0-9]+)")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")


def _field_errors(exc: msgspec.ValidationError) -> dict[str, list[str]]:
    text = str(exc)
    if match := _MISSING.match(text):
        return {match["field"]: ["This field is required."]}
    if match := _AT_FIELD.match(text):
        return {match["field"]: [match["message"]]}
    return {"non_field_errors": [text]}


def validate_outcome(item: Any) -> tuple[OutcomeIn | None, dict[str, list[str]]]:
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["Each outcome must be a JSON object."]}
    try:
        outcome = msgspec.convert(item, OutcomeIn)
    except msgspec.ValidationError as exc:
        return None, _field_errors(exc)
    if outcome.error is not None:
        # PostgreSQL text cannot hold NUL (as for events); the stored error is truncated.
        if "\x00" in outcome.error:
            return None, {"error": ["Must not contain the NUL character (\\u0000)."]}
        outcome.error = outcome.error[:MAX_ERROR_LENGTH]
    if all(getattr(outcome, name) is None for name in REPORTED_FIELDS):
        return None, {"non_field_errors": [f"Report at least one of {', '.join(REPORTED_FIELDS)}."]}
    return outcome, {}


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
