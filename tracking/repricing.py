"""Prices and re-pricing: price changes, imports, and the re-pricing of stored events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from controlplane.models import Router
from tracking.locks import LOCK_REPRICE, try_advisory_lock
from tracking.models import ModelPrice
from tracking.pricing import PriceBook, PriceRow, price_event
from tracking.rollups import rebuild_rollups
from tracking.selectors import price_book, revision_models

log = logging.getLogger(__name__)


def _queue_task(task_name: str, *args: Any) -> None:
    """Queue a Celery task after commit; a broker outage only delays it (beat retries)."""

    def send() -> None:
        try:
            from tracking import tasks

            getattr(tasks, task_name).delay(*args)
        except Exception as exc:  # Redis down: the periodic job picks the work up later
            log.warning("could not queue %s: %s", task_name, exc)

    transaction.on_commit(send)


@transaction.atomic
def set_model_price(
    *,
    model: str,
    input_per_token: Decimal,
    output_per_token: Decimal,
    effective_from: datetime,
    source: str = "",
    reprice: bool = True,
) -> ModelPrice:
    """Add or change one price; events since effective_from are re-priced by a task.

    Storing the values a row already has changes nothing (re-importing a price file must not
    re-price every event since the file's date).
    """
    same = ModelPrice.objects.filter(
        model=model,
        effective_from=effective_from,
        input_per_token=input_per_token,
        output_per_token=output_per_token,
    ).first()
    if same is not None and reprice:
        if same.source != source:
            same.source = source
            same.save(update_fields=["source"])
        return same
    price, _ = ModelPrice.objects.update_or_create(
        model=model,
        effective_from=effective_from,
        defaults={
            "input_per_token": input_per_token,
            "output_per_token": output_per_token,
            "source": source,
            "applied_at": None if reprice else timezone.now(),
        },
    )
    if reprice:
        _queue_task("apply_price_changes")
    return price


def import_prices(*, rows: Iterable[PriceRow], reprice: bool = True) -> int:
    count = 0
    with transaction.atomic():
        for row in rows:
            set_model_price(
                model=row.model,
                input_per_token=row.input_per_token,
                output_per_token=row.output_per_token,
                effective_from=row.effective_from,
                source=row.source,
                reprice=reprice,
            )
            count += 1
    return count


REPRICE_CHUNK = 5000


def reprice_events(
    *,
    router_id: int,
    since: datetime,
    progress: Callable[[int, int], None] | None = None,
    book: PriceBook | None = None,
) -> int:
    """Re-price a router's events since `since` with `book` (default: today's price table);
    returns rows changed."""
    if book is None:
        book = price_book()
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT count(*) FROM tracking_event WHERE router_id = %s AND "timestamp" >= %s',
            [router_id, since],
        )
        total = cursor.fetchone()[0]
    current, by_number = revision_models(router_id, set())
    revision_cache: dict[int, tuple[str, str]] = dict(by_number)
    done = changed = 0
    cursor_ts, cursor_id = since, None
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT event_id, "timestamp", revision, selected_model, prompt_tokens,
                       completion_tokens, estimated_cost, cost, baseline_cost
                FROM tracking_event
                WHERE router_id = %s AND "timestamp" >= %s
                  AND (%s::uuid IS NULL OR ("timestamp", event_id) > (%s, %s::uuid))
                ORDER BY "timestamp", event_id
                LIMIT %s
                """,
                [router_id, cursor_ts, cursor_id, cursor_ts, cursor_id, REPRICE_CHUNK],
            )
            rows = cursor.fetchall()
        if not rows:
            break
        missing = {r[2] for r in rows if r[2] is not None and r[2] not in revision_cache}
        if missing:
            revision_cache.update(revision_models(router_id, missing)[1])
        ids, costs, baselines = [], [], []
        for event_id, ts, revision, model, pt, ct, estimated, old_cost, old_base in rows:
            strong = revision_cache.get(revision, current)[0] if revision else current[0]
            cost, baseline = price_event(
                book,
                model=model,
                strong_model=strong or None,
                at=ts,
                prompt_tokens=pt,
                completion_tokens=ct,
                estimated_cost=estimated,
            )
            if cost != old_cost or baseline != old_base:
                ids.append(event_id)
                costs.append(cost)
                baselines.append(baseline)
        if ids:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    """
                    UPDATE tracking_event e SET cost = v.cost, baseline_cost = v.baseline
                    FROM unnest(%s::uuid[], %s::float8[], %s::float8[]) AS v(id, cost, baseline)
                    WHERE e.router_id = %s AND e.event_id = v.id
                    """,
                    [ids, costs, baselines, router_id],
                )
            changed += len(ids)
        done += len(rows)
        cursor_ts, cursor_id = rows[-1][1], rows[-1][0]
        if progress:
            progress(done, max(total, done))
    rebuild_rollups(router_id=router_id, since=since)
    return changed


_PRICE_SNAPSHOT = """
    SELECT id, model, input_per_token, output_per_token, effective_from, applied_at IS NULL
    FROM tracking_modelprice
"""
# Only rows still holding the values the run read: one edited meanwhile stays pending.
_MARK_APPLIED = """
    UPDATE tracking_modelprice p SET applied_at = now()
    FROM unnest(%s::bigint[], %s::text[], %s::numeric[], %s::numeric[], %s::timestamptz[])
        AS v(id, model, input_per_token, output_per_token, effective_from)
    WHERE p.id = v.id AND p.applied_at IS NULL AND p.model = v.model
      AND p.input_per_token = v.input_per_token AND p.output_per_token = v.output_per_token
      AND p.effective_from = v.effective_from
"""


def apply_price_changes() -> int:
    """Re-price every router's events since the earliest price change not yet applied.

    One read of the price table is both the price book of the whole run and the list of pending
    rows, so a row is marked applied only when the values it holds at the end are the ones the
    events were re-priced with; a row added or edited during the run is left for the next run.
    """
    with connection.cursor() as cursor:
        if not try_advisory_lock(cursor, LOCK_REPRICE):
            return 0
    try:
        with connection.cursor() as cursor:
            cursor.execute(_PRICE_SNAPSHOT)
            rows = cursor.fetchall()
        pending = [row[:5] for row in rows if row[5]]
        if not pending:
            return 0
        book = PriceBook(row[1:5] for row in rows)
        since = min(row[4] for row in pending)
        changed = 0
        for router_id in Router.objects.values_list("pk", flat=True):
            changed += reprice_events(router_id=router_id, since=since, book=book)
        with connection.cursor() as cursor:
            cursor.execute(_MARK_APPLIED, [list(column) for column in zip(*pending, strict=True)])
        return changed
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_REPRICE])


def recompute_savings(*, router_id: int, progress: Callable[[int, int], None] | None = None) -> int:
    """Re-price all of a router's stored events and rebuild its rollups (dashboard button)."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT min("timestamp") FROM tracking_event WHERE router_id = %s', [router_id]
        )
        oldest = cursor.fetchone()[0]
    if oldest is None:
        if progress:
            progress(0, 0)
        return 0
    return reprice_events(router_id=router_id, since=oldest, progress=progress)
