"""The answers to `POST /api/v1/events` and `POST /api/v1/events/outcomes` for a raw body,
shared by the DRF views and the ASGI fast path (tracking.fastpath), so both give the same status
and the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tracking.events import BatchError
from tracking.ingest import record_events
from tracking.outcome_ingest import record_outcomes


def _answer(raw: bytes, store: Callable[[Any], Any]) -> tuple[int, bytes]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return 400, orjson.dumps({"errors": {"body": [f"Malformed JSON: {exc}"]}})
    try:
        result = store(body)
    except BatchError as exc:
        return exc.status, orjson.dumps({"errors": exc.errors})
    return 200, orjson.dumps(result.to_dict())


def answer_events(*, router_id: int, raw: bytes) -> tuple[int, bytes]:
    """Decode, validate and store a batch of events; (HTTP status, JSON body). Runs the ingest
    service, so call it where the ORM may block (a thread, not the event loop)."""
    return _answer(raw, lambda body: record_events(router_id=router_id, payload=body, raw=raw))


def answer_outcomes(*, router_id: int, raw: bytes) -> tuple[int, bytes]:
    """Decode, validate and store a batch of outcomes; (HTTP status, JSON body)."""
    return _answer(raw, lambda body: record_outcomes(router_id=router_id, payload=body))
