"""PostgreSQL advisory locks: one tracking job of each kind at a time."""

from __future__ import annotations

from typing import Any

# Session advisory-lock keys, across all workers (LOCK_RETENTION with the router id as a second
# key: one purge per router).
LOCK_REPRICE = 0x7270_0001
LOCK_RETENTION = 0x7270_0002
LOCK_ROLLUP = 0x7270_0003  # transaction-level: one rollup run at a time


def try_advisory_lock(cursor: Any, key: int) -> bool:
    cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
    return bool(cursor.fetchone()[0])
