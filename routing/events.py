"""The routing event schema and its validation (msgspec), shared by the SDK and the server.

The control plane validates each posted event with `validate_batch`; the SDK's local mode
stores what the same schema accepts, so both price and report the same events the same way.

`validate_batch` turns a decoded JSON body into (valid events with their index, rejected items
with field errors). Unknown fields, including a raw `text`, are ignored and so never stored.

PostgreSQL text cannot hold NUL, so a stored string with one would fail the whole COPY: such an
event is rejected here. The check is per event only when the body may hold one (`may_hold_nul`).
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

MAX_EVENTS_PER_BATCH = 1000
MAX_FUTURE = timedelta(minutes=5)  # router clocks drift; more than this is a bug, not drift
MAX_ERROR_LENGTH = 2000

NonNegInt = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0, le=1e12)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
ShortText = Annotated[str, msgspec.Meta(max_length=64)]


# gc=False: an event holds only scalars and a list of strings, so it can never be part of a
# reference cycle; untracked, the many events a process keeps (the SDK's history, a server's
# batch) add nothing to each garbage collection's scan.
class EventIn(msgspec.Struct, gc=False):
    event_id: uuid.UUID
    timestamp: Annotated[datetime, msgspec.Meta(extra_json_schema={"format": "date-time"})]
    selected_model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    revision: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None
    domains: list[ShortText] | None = None
    routing_method: ShortText | None = None
    model_tier: Literal["strong", "weak", "other"] | None = None
    strong_win_rate: Fraction | None = None
    threshold: Fraction | None = None
    prompt_tokens: NonNegInt | None = None
    completion_tokens: NonNegInt | None = None
    estimated_cost: NonNegFloat | None = None
    latency_ms: NonNegFloat | None = None
    success: bool | None = True
    fallback_used: bool | None = False
    error: str | None = None
    text_sha256: Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]{64}$")] | None = None
    text_length: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] | None = None
    ab_group: ShortText | None = None


class OutcomeIn(msgspec.Struct):
    """A call's outcome, attached to its decision's event (`POST events/outcomes`): the call's
    token counts (the event is re-priced from them), latency, success or error, and an
    optional quality score in [0, 1]. Fields left out (or null) leave the event's as they are.
    """

    event_id: uuid.UUID
    prompt_tokens: NonNegInt | None = None
    completion_tokens: NonNegInt | None = None
    latency_ms: NonNegFloat | None = None
    success: bool | None = None
    error: str | None = None
    quality: Fraction | None = None


OUTCOME_FIELDS: tuple[str, ...] = OutcomeIn.__struct_fields__[1:]


def validate_outcome(item: Any) -> tuple[OutcomeIn | None, dict[str, list[str]]]:
    """(the outcome, {}) or (None, field errors)."""
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["Each outcome must be a JSON object."]}
    try:
        outcome = msgspec.convert(item, OutcomeIn)
    except msgspec.ValidationError as exc:
        return None, _field_errors(exc)
    if outcome.error is not None:
        if "\x00" in outcome.error:  # PostgreSQL text cannot hold it (as for events)
            return None, {"error": list(_NUL_ERROR)}
        outcome.error = outcome.error[:MAX_ERROR_LENGTH]  # kept as events keep theirs
    if all(getattr(outcome, name) is None for name in OUTCOME_FIELDS):
        return None, {"non_field_errors": [f"Report at least one of {', '.join(OUTCOME_FIELDS)}."]}
    return outcome, {}


# JSON can only carry NUL escaped (a raw control character is malformed JSON), so a body without
# this byte sequence holds no NUL and the per-event scan can be skipped (one substring search).
NUL_ESCAPE = b"\\u0000"
_NUL_ERROR = ["Must not contain the NUL character (\\u0000)."]
_FIELD_NAMES = EventIn.__struct_fields__


def may_hold_nul(raw: bytes) -> bool:
    """Whether a raw JSON body may decode to a string holding NUL (false positives are fine)."""
    return NUL_ESCAPE in raw


def _nul_field(event: EventIn) -> str | None:
    """The first stored string field (or list of strings) holding NUL; every field is covered,
    so a string field added to EventIn later is checked too."""
    for name, value in zip(_FIELD_NAMES, msgspec.structs.astuple(event), strict=True):
        if isinstance(value, str):
            if "\x00" in value:
                return name
        elif isinstance(value, list) and any(
            isinstance(item, str) and "\x00" in item for item in value
        ):
            return name
    return None


_AT_FIELD = re.compile(r"^(?P<message>.*?) - at `\$\.(?P<field>[A-Za-z_0-9]+)")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")


def _field_errors(exc: msgspec.ValidationError) -> dict[str, list[str]]:
    text = str(exc)
    if match := _MISSING.match(text):
        return {match["field"]: ["This field is required."]}
    if match := _AT_FIELD.match(text):
        return {match["field"]: [match["message"]]}
    return {"non_field_errors": [text]}


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_event_id() -> str:
    """A random (version 4) UUID as `str(uuid.uuid4())` writes it, made without the UUID object
    (about a third of the cost, on the caller's thread of every tracked decision)."""
    digits = "%032x" % (int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def primary_domain(domains: list[str] | None) -> str:
    """The breakdown domain: the first listed one, lower-cased; "general" when none."""
    if domains:
        first = domains[0].strip().lower()
        if first:
            return first
    return "general"


def validate_event(
    item: Any, now: datetime, *, check_nul: bool = True
) -> tuple[EventIn | None, dict[str, list[str]]]:
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["Each event must be a JSON object."]}
    try:
        event = msgspec.convert(item, EventIn)
    except msgspec.ValidationError as exc:
        return None, _field_errors(exc)
    return _checked(event, now, check_nul=check_nul)


def validate_events(
    items: list[Any], now: datetime
) -> list[tuple[EventIn | None, dict[str, list[str]]]]:
    """`validate_event` of each item (NUL included); a batch of valid items, the usual case,
    is converted and scanned for NUL in one call each."""
    try:
        events = msgspec.convert(items, list[EventIn])
    except msgspec.ValidationError:
        return [validate_event(item, now) for item in items]
    # One encoding of the batch tells whether any string may hold NUL (see may_hold_nul).
    try:
        check_nul = may_hold_nul(msgspec.json.encode(items))
    except TypeError:  # a value JSON cannot carry: scan each event instead
        check_nul = True
    return [_checked(event, now, check_nul=check_nul) for event in events]


def _checked(
    event: EventIn, now: datetime, *, check_nul: bool
) -> tuple[EventIn | None, dict[str, list[str]]]:
    """The checks the schema's types cannot state."""
    if event.timestamp.tzinfo is None:
        event.timestamp = event.timestamp.replace(tzinfo=UTC)
    try:
        # Stored in UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows.
        event.timestamp = event.timestamp.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        return None, {"timestamp": ["Is out of range."]}
    if event.timestamp > now + MAX_FUTURE:
        return None, {"timestamp": ["Is more than 5 minutes in the future."]}
    if event.timestamp.year < 2000:
        return None, {"timestamp": ["Is before the year 2000."]}
    if check_nul and (name := _nul_field(event)) is not None:
        return None, {name: list(_NUL_ERROR)}
    return event, {}


def validate_batch(
    body: Any, now: datetime | None = None, *, check_nul: bool = True
) -> tuple[list[EventIn], list[dict[str, Any]]]:
    """(valid events, rejected [{"index", "errors"}]); raises BatchError for a bad envelope.

    `check_nul=False` only when the raw body is known to hold no NUL (see `may_hold_nul`).
    """
    if not isinstance(body, dict):
        raise BatchError({"body": ['Expected a JSON object: {"events": [...]}.']})
    events = body.get("events")
    if not isinstance(events, list):
        raise BatchError({"events": ["Expected a list of events."]})
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise BatchTooLarge(
            {"events": [f"At most {MAX_EVENTS_PER_BATCH} events per request; got {len(events)}."]}
        )
    now = now or datetime.now(UTC)
    valid: list[EventIn] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(events):
        event, errors = validate_event(item, now, check_nul=check_nul)
        if event is None:
            rejected.append({"index": index, "errors": errors})
        else:
            valid.append(event)
    return valid, rejected


class BatchError(Exception):
    status = 400

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class BatchTooLarge(BatchError):
    status = 413
