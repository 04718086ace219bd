"""Storing outcomes on their events: one per event, re-priced, rollups kept exact.

One transaction per batch:
1. take a transaction id, then hold the rollup watermark shared (tracking.rollups): no rollup
   run or rebuild moves it until we commit, and our id is at or above any watermark;
2. lock the batch's events (one SELECT … FOR UPDATE, in key order), so two racing copies of a
   batch apply it once: the second waits, then sees the first's digest and counts duplicates;
3. decide per item (unknown event, duplicate, conflicting outcome, or apply) and re-price the
   applied ones in Python with the ingestion cost rule (tracking.pricing.price_event);
4. take the rows already folded into the rollups (ingest_xid below the watermark) out of them;
5. one UPDATE … FROM unnest(…) writes the outcomes and moves the rows to the not-yet-rolled-up
   tail (ingest_xid = our id), where reports count their new values and the next rollup run
   folds them in.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from tracking.ingest import IngestResult
from tracking.outcomes import OutcomeIn, outcome_digest, validate_outcomes
from tracking.pricing import PriceBook, price_event
from tracking.rollups import hold_watermark, unfold_events
from tracking.selectors import price_book, revision_models

_LOCK_EVENTS = """
    SELECT event_id, "timestamp", revision, selected_model, prompt_tokens, completion_tokens,
           estimated_cost, outcome_digest, ingest_xid
    FROM tracking_event
    WHERE router_id = %s AND event_id = ANY(%s::uuid[])
    ORDER BY event_id
    FOR UPDATE
"""
_APPLY = """
    UPDATE tracking_event AS e SET
        prompt_tokens = v.prompt_tokens,
        completion_tokens = v.completion_tokens,
        latency_ms = coalesce(v.latency_ms, e.latency_ms),
        success = coalesce(v.success, e.success),
        error = coalesce(v.error, e.error),
        quality = v.quality,
        cost = v.cost,
        baseline_cost = v.baseline,
        outcome_digest = v.digest,
        outcome_at = now(),
        ingest_xid = %(xid)s
    FROM unnest(%(ids)s::uuid[], %(prompt)s::bigint[], %(completion)s::bigint[],
                %(latency)s::float8[], %(success)s::boolean[], %(error)s::text[],
                %(quality)s::float8[], %(cost)s::float8[], %(baseline)s::float8[],
                %(digest)s::bytea[])
        AS v(event_id, prompt_tokens, completion_tokens, latency_ms, success, error, quality,
             cost, baseline, digest)
    WHERE e.router_id = %(router)s AND e.event_id = v.event_id
"""
# The parameters of _APPLY, in the order of the tuples `_update_row` builds.
_UPDATE_COLUMNS = (
    "ids",
    "prompt",
    "completion",
    "latency",
    "success",
    "error",
    "quality",
    "cost",
    "baseline",
    "digest",
)
UNKNOWN_EVENT = "unknown event_id"
CONFLICT = "This event already has a different outcome."


def store_outcomes(
    *, router_id: int, outcomes: list[tuple[int, OutcomeIn]]
) -> tuple[int, int, list[dict[str, Any]]]:
    """Attach valid (index, outcome) items to this router's events; returns (accepted,
    duplicates, rejected [{"index", "errors"}])."""
    if not outcomes:
        return 0, 0, []
    ids = sorted({outcome.event_id for _, outcome in outcomes})
    book = price_book()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        xid = cursor.fetchone()[0]
        watermark = hold_watermark(cursor)
        cursor.execute(_LOCK_EVENTS, [router_id, ids])
        events = {row[0]: row for row in cursor.fetchall()}
        current, by_number = revision_models(
            router_id, {row[2] for row in events.values() if row[2] is not None}
        )
        # event id -> digest of the outcome it holds (stored, or applied earlier in this batch)
        held = {eid: bytes(row[7]) for eid, row in events.items() if row[7] is not None}
        updates: list[tuple[Any, ...]] = []
        accepted = duplicates = 0
        rejected: list[dict[str, Any]] = []
        for index, outcome in outcomes:
            event = events.get(outcome.event_id)
            digest = outcome_digest(outcome)
            if event is None:
                rejected.append({"index": index, "errors": {"event_id": [UNKNOWN_EVENT]}})
            elif outcome.event_id in held:
                if held[outcome.event_id] == digest:
                    duplicates += 1
                else:
                    rejected.append({"index": index, "errors": {"event_id": [CONFLICT]}})
            else:
                held[outcome.event_id] = digest
                updates.append(_update_row(event, outcome, digest, current, by_number, book))
                accepted += 1
        if updates:
            folded = [row[0] for row in updates if events[row[0]][8] < watermark]
            unfold_events(cursor, router_id=router_id, event_ids=folded)
            params: dict[str, Any] = {
                name: list(column)
                for name, column in zip(_UPDATE_COLUMNS, zip(*updates, strict=True), strict=True)
            }
            cursor.execute(_APPLY, params | {"xid": xid, "router": router_id})
    return accepted, duplicates, rejected


def _update_row(
    event: tuple[Any, ...],
    outcome: OutcomeIn,
    digest: bytes,
    current: tuple[str, str],
    by_number: dict[int, tuple[str, str]],
    book: PriceBook,
) -> tuple[Any, ...]:
    event_id, at, revision, model, prompt, completion, estimated = event[:7]
    prompt = outcome.prompt_tokens if outcome.prompt_tokens is not None else prompt
    if outcome.completion_tokens is not None:
        completion = outcome.completion_tokens
    strong = by_number.get(revision, current)[0] if revision is not None else current[0]
    cost, baseline = price_event(
        book,
        model=model,
        strong_model=strong or None,
        at=at,
        prompt_tokens=prompt,
        completion_tokens=completion,
        estimated_cost=estimated,
    )
    return (
        event_id,
        prompt,
        completion,
        outcome.latency_ms,
        outcome.success,
        outcome.error,
        outcome.quality,
        cost,
        baseline,
        digest,
    )


def record_outcomes(*, router_id: int, payload: Any) -> IngestResult:
    """Validate a decoded `{"outcomes": [...]}` body and store its good outcomes.

    Raises tracking.events.BatchError (400) / BatchTooLarge (413) for a bad envelope.
    """
    valid, rejected = validate_outcomes(payload)
    accepted, duplicates, refused = store_outcomes(router_id=router_id, outcomes=valid)
    return IngestResult(accepted, duplicates, sorted(rejected + refused, key=_index))


def _index(item: dict[str, Any]) -> int:
    return item["index"]
