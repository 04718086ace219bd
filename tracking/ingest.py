"""Event ingestion, the hot path: validate, price in Python, COPY, INSERT … ON CONFLICT.

Validate with msgspec, price in Python from one price query, COPY the batch into a
per-connection temp table, then one INSERT … SELECT … ON CONFLICT DO NOTHING. The row count of
that INSERT is the number accepted; everything else valid was a duplicate (a retried batch, or
the same event_id twice in one batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from tracking import metrics
from tracking.events import (
    MAX_ERROR_LENGTH,
    EventIn,
    may_hold_nul,
    primary_domain,
    validate_batch,
)
from tracking.pricing import PriceBook, price_event
from tracking.selectors import price_book, revision_models

STAGE_TABLE = "tracking_event_stage"
EVENT_COLUMNS = (
    "router_id",
    "event_id",
    "timestamp",
    "revision",
    "domains",
    "domain",
    "routing_method",
    "selected_model",
    "model_tier",
    "strong_win_rate",
    "threshold",
    "prompt_tokens",
    "completion_tokens",
    "estimated_cost",
    "cost",
    "baseline_cost",
    "latency_ms",
    "success",
    "fallback_used",
    "error",
    "text_sha256",
    "text_length",
    "ab_group",
)
COLUMN_LIST = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} ON COMMIT DELETE ROWS AS "
    f"SELECT {COLUMN_LIST} FROM tracking_event WITH NO DATA"
)
_INSERT_FROM_STAGE = f"""
    INSERT INTO tracking_event ({COLUMN_LIST}, received_at, ingest_xid)
    SELECT {COLUMN_LIST}, now(), (SELECT pg_current_xact_id()::text::bigint)
    FROM {STAGE_TABLE}
    ON CONFLICT (router_id, event_id) DO NOTHING
"""


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def _infer_tier(model: str, strong: str, weak: str) -> str:
    if model == strong:
        return "strong"
    if model == weak:
        return "weak"
    return "other"


def event_row(
    router_id: int, event: EventIn, models: tuple[str, str], book: PriceBook
) -> tuple[Any, ...]:
    strong, weak = models
    cost, baseline = price_event(
        book,
        model=event.selected_model,
        strong_model=strong or None,
        at=event.timestamp,
        prompt_tokens=event.prompt_tokens,
        completion_tokens=event.completion_tokens,
        estimated_cost=event.estimated_cost,
    )
    return (
        router_id,
        event.event_id,
        event.timestamp,
        event.revision,
        event.domains or [],
        primary_domain(event.domains),
        event.routing_method or "",
        event.selected_model,
        event.model_tier or _infer_tier(event.selected_model, strong, weak),
        event.strong_win_rate,
        event.threshold,
        event.prompt_tokens,
        event.completion_tokens,
        event.estimated_cost,
        cost,
        baseline,
        event.latency_ms,
        True if event.success is None else event.success,
        bool(event.fallback_used),
        (event.error or "")[:MAX_ERROR_LENGTH],
        (event.text_sha256 or "").lower(),
        event.text_length,
        event.ab_group or "",
    )


def ingest_events(*, router_id: int, events: list[EventIn]) -> tuple[int, int]:
    """Store valid events at most once each; returns (accepted, duplicates)."""
    if not events:
        return 0, 0
    current, by_number = revision_models(
        router_id, {e.revision for e in events if e.revision is not None}
    )
    book = price_book()
    rows = [
        event_row(
            router_id,
            event,
            by_number.get(event.revision, current) if event.revision is not None else current,
            book,
        )
        for event in events
    ]
    # Inside an outer transaction (tests, callers batching) ON COMMIT has not emptied the
    # stage table since the last batch, so clear it explicitly.
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CREATE_STAGE)
        if nested:
            cursor.execute(f"TRUNCATE {STAGE_TABLE}")
        with cursor.cursor.copy(f"COPY {STAGE_TABLE} ({COLUMN_LIST}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(_INSERT_FROM_STAGE)
        accepted = cursor.rowcount
    return accepted, len(events) - accepted


def record_events(
    *, router_id: int, payload: Any, now: datetime | None = None, raw: bytes | None = None
) -> IngestResult:
    """Validate a decoded `{"events": [...]}` body and store its good events.

    `raw`, the body `payload` was decoded from, lets the hot path skip the per-event NUL scan
    when the bytes cannot hold one. Raises tracking.events.BatchError (400) / BatchTooLarge
    (413) for a bad envelope.
    """
    check_nul = raw is None or may_hold_nul(raw)
    valid, rejected = validate_batch(payload, now, check_nul=check_nul)
    accepted, duplicates = ingest_events(router_id=router_id, events=valid)
    metrics.count_ingested(accepted=accepted, duplicates=duplicates, rejected=len(rejected))
    return IngestResult(accepted, duplicates, rejected)
