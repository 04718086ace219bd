"""Tracking reads shared by ingestion and re-pricing: the price table, revisions' models."""

from __future__ import annotations

from django.db import connection

from tracking.pricing import PriceBook


def price_book() -> PriceBook:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT model, input_per_token, output_per_token, effective_from "
            "FROM tracking_modelprice"
        )
        return PriceBook(cursor.fetchall())


def revision_models(router_id: int, numbers: set[int]) -> tuple[tuple[str, str], dict]:
    """(current (strong, weak), {revision number: (strong, weak)}) in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT r.number, r.config->>'strong_model', r.config->>'weak_model',
                   r.id = ro.current_revision_id
            FROM controlplane_router ro
            JOIN controlplane_configrevision r ON r.router_id = ro.id
            WHERE ro.id = %s AND (r.id = ro.current_revision_id OR r.number = ANY(%s))
            """,
            [router_id, list(numbers)],
        )
        rows = cursor.fetchall()
    by_number = {number: (strong or "", weak or "") for number, strong, weak, _ in rows}
    current = next(((s or "", w or "") for _, s, w, is_current in rows if is_current), ("", ""))
    return current, by_number
