"""Which router processes poll flags: kept in memory, written in one batch every few seconds.

Every flags poll (fast path or DRF view) calls `recorder.record(...)`, which only updates a
dict. A flush turns the pending entries into one upsert of RouterClient rows (and one update of
the keys' last_used_at), so polling never costs a database write per request. The ASGI fast path
flushes with its own async connection; a process without it (WSGI, tests) flushes from a small
daemon thread through the ORM.

A router keeps at most ROUTEPLANE_MAX_CLIENTS_PER_ROUTER rows: the upsert refuses new client ids
past it (a warning names the router, at most every CAP_WARNING_SECONDS), and a daily task
(controlplane.tasks.expire_router_clients) deletes clients unseen for
ROUTEPLANE_CLIENT_RETENTION_DAYS days.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

FLUSH_SECONDS = float(os.environ.get("ROUTEPLANE_CLIENT_FLUSH_SECONDS", "2"))
CAP_WARNING_SECONDS = 300.0
MAX_CLIENT_ID = 128
MAX_USER_AGENT = 256


@dataclass
class Seen:
    router_id: int
    client_id: str
    sdk_version: str
    user_agent: str
    revision: int | None
    first_seen: datetime
    last_seen: datetime


def sdk_version_of(user_agent: str) -> str:
    """`routeplane-sdk/0.1.0 (…)` -> `0.1.0`; anything else -> ''."""
    for part in user_agent.split():
        if part.startswith("routeplane-sdk/"):
            return part.partition("/")[2][:64]
    return ""


class ClientRecorder:
    def __init__(self) -> None:
        self._pending: dict[tuple[int, str], Seen] = {}
        self._keys_used: dict[str, datetime] = {}  # key hash -> last use
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Set by the ASGI fast path: it flushes, so no thread is needed in that process.
        self.external_flusher = False
        self.autostart = True
        self._cap_warned: dict[int, float] = {}  # router id -> when its cap was last logged

    def record(
        self,
        *,
        router_id: int,
        client_id: str | None,
        user_agent: str,
        revision: int | None,
        ip: str | None = None,
        key_hash: str | None = None,
        now: datetime | None = None,
    ) -> None:
        now = now or datetime.now(UTC)
        ident = (client_id or "").strip()[:MAX_CLIENT_ID] or f"anonymous@{ip or 'unknown'}"
        user_agent = user_agent[:MAX_USER_AGENT]
        with self._lock:
            seen = self._pending.get((router_id, ident))
            if seen is None:
                self._pending[(router_id, ident)] = Seen(
                    router_id, ident, sdk_version_of(user_agent), user_agent, revision, now, now
                )
            else:
                seen.user_agent = user_agent
                seen.sdk_version = sdk_version_of(user_agent)
                seen.revision = revision
                seen.last_seen = now
            if key_hash:
                self._keys_used[key_hash] = now
        if not self.external_flusher and self.autostart and self._thread is None:
            self._start_thread()

    def key_used(self, key_hash: str, now: datetime | None = None) -> None:
        """A key's use outside a flags poll (the ingestion fast path): last_used_at only."""
        with self._lock:
            self._keys_used[key_hash] = now or datetime.now(UTC)

    def drain(self) -> tuple[list[Seen], dict[str, datetime]]:
        with self._lock:
            pending, self._pending = self._pending, {}
            keys, self._keys_used = self._keys_used, {}
        return list(pending.values()), keys

    def restore(self, seen: list[Seen], keys: dict[str, datetime]) -> None:
        """Put back entries a failed flush could not write (newer ones recorded since win)."""
        with self._lock:
            for item in seen:
                self._pending.setdefault((item.router_id, item.client_id), item)
            for key_hash, when in keys.items():
                self._keys_used.setdefault(key_hash, when)

    def pending_count(self) -> int:
        return len(self._pending)

    # --- the ORM flush (processes without the fast path) --------------------------------

    def flush(self) -> int:
        """Write pending entries through the ORM; returns how many client rows were upserted."""
        seen, keys = self.drain()
        if not seen and not keys:
            return 0
        try:
            refused = _write_with_orm(seen, keys)
        except Exception:
            self.restore(seen, keys)
            raise
        self.warn_refused(refused)
        return len(seen) - sum(count for _, count in refused)

    def warn_refused(self, refused: list[tuple[int, int]], now: float | None = None) -> None:
        """One warning per router per CAP_WARNING_SECONDS for client ids refused by the cap
        (UPSERT_SQL's answer), however many flushes refuse some."""
        now = time.monotonic() if now is None else now
        for router_id, count in refused:
            last = self._cap_warned.get(router_id)
            if last is not None and now - last < CAP_WARNING_SECONDS:
                continue
            self._cap_warned[router_id] = now
            log.warning(
                "router %s has reached its cap of router clients: %d new client ids were not "
                "recorded (ROUTEPLANE_MAX_CLIENTS_PER_ROUTER; quiet clients expire after "
                "ROUTEPLANE_CLIENT_RETENTION_DAYS)",
                router_id,
                count,
            )

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="routeplane-client-flush", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        from django.db import close_old_connections

        failing = False
        while True:
            time.sleep(FLUSH_SECONDS)
            if self.external_flusher:
                return
            try:
                close_old_connections()
                self.flush()
                failing = False
            except Exception as exc:
                # Once per outage, not every few seconds.
                log.log(
                    logging.DEBUG if failing else logging.WARNING,
                    "client flush failed, will retry: %s",
                    exc,
                )
                failing = True


# Workers flush on their own schedules, so a late flush may carry an older poll: what the client
# reported (revision, SDK version, user agent) is taken only from a poll at least as recent as
# the stored one, the same rule as last_seen's GREATEST.
_NEWER = "EXCLUDED.last_seen >= controlplane_routerclient.last_seen"
# Any X-Routeplane-Client value would otherwise become a row: known clients are always updated,
# new ones are inserted only while the router has fewer than the cap (ranked by first poll).
# Each flush counts the rows it sees, so workers flushing at the same instant can each fill the
# last free places: the cap is exact per flush and soft (by one flush's new ids) across workers.
# The statement answers (router_id, refused) for each router whose new ids did not fit.
UPSERT_SQL = f"""
WITH cap AS (SELECT %s::int AS max_clients),
v AS (
    SELECT v.*
    FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::int[],
                %s::timestamptz[], %s::timestamptz[])
         AS v(router_id, client_id, sdk_version, user_agent, revision, first_seen, last_seen)
    JOIN controlplane_router r ON r.id = v.router_id
),
stored AS (
    SELECT router_id, count(*) AS n FROM controlplane_routerclient
    WHERE router_id IN (SELECT router_id FROM v) GROUP BY router_id
),
ranked AS (
    SELECT v.*, c.id IS NOT NULL AS known,
           coalesce(s.n, 0) + row_number() OVER (
               PARTITION BY v.router_id, c.id IS NULL ORDER BY v.first_seen, v.client_id
           ) AS place
    FROM v
    LEFT JOIN controlplane_routerclient c
           ON c.router_id = v.router_id AND c.client_id = v.client_id
    LEFT JOIN stored s ON s.router_id = v.router_id
),
written AS (
    INSERT INTO controlplane_routerclient
        (router_id, client_id, sdk_version, user_agent, revision, first_seen, last_seen)
    SELECT router_id, client_id, sdk_version, user_agent, revision, first_seen, last_seen
    FROM ranked, cap WHERE known OR place <= cap.max_clients
    ON CONFLICT (router_id, client_id) DO UPDATE SET
        sdk_version = CASE WHEN {_NEWER} THEN EXCLUDED.sdk_version
                           ELSE controlplane_routerclient.sdk_version END,
        user_agent = CASE WHEN {_NEWER} THEN EXCLUDED.user_agent
                          ELSE controlplane_routerclient.user_agent END,
        revision = CASE WHEN {_NEWER} THEN EXCLUDED.revision
                        ELSE controlplane_routerclient.revision END,
        last_seen = GREATEST(controlplane_routerclient.last_seen, EXCLUDED.last_seen)
    RETURNING 1
)
SELECT router_id, count(*) FROM ranked, cap
WHERE NOT known AND place > cap.max_clients
GROUP BY router_id
"""
KEYS_USED_SQL = """
UPDATE controlplane_apikey k SET last_used_at = v.used
FROM unnest(%s::text[], %s::timestamptz[]) AS v(key_hash, used)
WHERE k.key_hash = v.key_hash AND (k.last_used_at IS NULL OR k.last_used_at < v.used)
"""


def upsert_params(seen: list[Seen], max_clients: int | None = None) -> list:
    """UPSERT_SQL's parameters; `max_clients` defaults to ROUTEPLANE_MAX_CLIENTS_PER_ROUTER."""
    if max_clients is None:
        from django.conf import settings

        max_clients = settings.ROUTEPLANE_MAX_CLIENTS_PER_ROUTER
    # Routers deleted since the poll drop out through the JOIN instead of failing the batch.
    return [
        max_clients,
        [s.router_id for s in seen],
        [s.client_id for s in seen],
        [s.sdk_version for s in seen],
        [s.user_agent for s in seen],
        [s.revision for s in seen],
        [s.first_seen for s in seen],
        [s.last_seen for s in seen],
    ]


def keys_params(keys: dict[str, datetime]) -> list[list]:
    return [list(keys), list(keys.values())]


def _write_with_orm(seen: list[Seen], keys: dict[str, datetime]) -> list[tuple[int, int]]:
    """Upsert through the ORM's connection; returns UPSERT_SQL's (router_id, refused) rows."""
    from django.db import connection, transaction

    refused: list[tuple[int, int]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        if seen:
            cursor.execute(UPSERT_SQL, upsert_params(seen))
            refused = cursor.fetchall()
        if keys:
            cursor.execute(KEYS_USED_SQL, keys_params(keys))
    return refused


def expire_clients(*, days: int, now: datetime | None = None) -> int:
    """Delete the clients of every router not seen for `days` days; returns how many."""
    from django.utils import timezone

    from controlplane.models import RouterClient

    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = RouterClient.objects.filter(last_seen__lt=cutoff).delete()
    return deleted


recorder = ClientRecorder()
