"""The answer to `POST /api/v1/events` for a raw body, shared by the DRF view and the ASGI fast
path (tracking.fastpath), so both give the same status and the same bytes."""

from __future__ import annotations

import orjson

from tracking import services
from tracking.events import BatchError


def answer_events(*, router_id: int, raw: bytes) -> tuple[int, bytes]:
    """Decode, validate and store a batch; (HTTP status, JSON body). Runs the ingest service,
    so call it where the ORM may block (a thread, not the event loop)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return 400, orjson.dumps({"errors": {"body": [f"Malformed JSON: {exc}"]}})
    try:
        result = services.record_events(router_id=router_id, payload=body, raw=raw)
    except BatchError as exc:
        return exc.status, orjson.dumps({"errors": exc.errors})
    return 200, orjson.dumps(result.to_dict())
