"""The in-memory side of the flags fast path: keys, rendered documents, waiters, limits.

One FlagServer per process. It keeps
- the active API keys (sha256 -> router, role), so a poll needs no database to authenticate;
- each router's current document, rendered once by `controlplane.flagdoc.render_document` (the
  very function the DRF view uses), so a poll is a dict lookup and a byte copy;
- an asyncio.Event per router that long-polls wait on, so a waiting router holds no thread and
  no database connection.

It is fed by PostgreSQL LISTEN/NOTIFY on 'routeplane_revisions' and 'routeplane_keys' (services
notify inside their transactions, so a message arrives only after the commit), and re-checks
every ROUTEPLANE_FLAGS_RECHECK_SECONDS with one cheap query so a missed message heals itself.
While it is not connected it is not `ready`, and every poll goes to Django instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from controlplane import metrics
from controlplane.clients import (
    KEYS_USED_SQL,
    UPSERT_SQL,
    ClientRecorder,
    keys_params,
    upsert_params,
)
from controlplane.flagdoc import RenderedDocument, render_document

log = logging.getLogger("controlplane.flagserver")

REVISIONS_CHANNEL = "routeplane_revisions"
KEYS_CHANNEL = "routeplane_keys"

ROUTERS_SQL = """
SELECT r.id, r.slug, cr.id, cr.number
FROM controlplane_router r JOIN controlplane_configrevision cr ON cr.id = r.current_revision_id
"""
REVISIONS_SQL = """
SELECT r.id, r.slug, cr.id, cr.number, cr.config, cr.phase, cr.phase_domain, cr.kill_switch,
       cr.created_at, cr.experiment
FROM controlplane_router r JOIN controlplane_configrevision cr ON cr.id = r.current_revision_id
WHERE r.id = ANY(%s)
"""
FLAG_STATES_SQL = """
SELECT revision_id, name, enabled, rollout_percent FROM controlplane_flagstate
WHERE revision_id = ANY(%s)
"""
KEYS_SQL = """
SELECT key_hash, router_id, role, prefix, id FROM controlplane_apikey WHERE revoked_at IS NULL
"""


@dataclass(frozen=True)
class KeyEntry:
    router_id: int
    role: str
    prefix: str
    key_id: int  # ApiKey.pk: the DRF throttle counts per key id


def connection_kwargs() -> dict[str, Any]:
    """psycopg connect() arguments for Django's default database (read at connect time, so a
    test run's test database is used)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    kwargs: dict[str, Any] = {
        "dbname": db.get("NAME") or "",
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": str(db["PORT"]) if db.get("PORT") else None,
        "connect_timeout": 5,
        "application_name": "routeplane-flags",
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    # Django hands OPTIONS to psycopg as libpq parameters (the embedded server's socket dir
    # arrives as OPTIONS["host"]); skip only the keys Django itself consumes.
    django_only = {
        "isolation_level",
        "server_side_binding",
        "pool",
        "assume_role",
        "cursor_factory",
    }
    for name, value in (db.get("OPTIONS") or {}).items():
        if name not in django_only:
            kwargs[name] = value
    return {k: v for k, v in kwargs.items() if v is not None}


@dataclass(frozen=True)
class LoadedRevision:
    """A current revision as the fast path loads it (one row plus its flag states): what
    render_document reads, without the ORM (we are on the event loop)."""

    number: int
    config: dict[str, Any]
    phase: str
    phase_domain: str
    kill_switch: bool
    flags: dict[str, dict[str, Any]]
    experiment: dict[str, Any] | None = None

    def flags_dict(self) -> dict[str, dict[str, Any]]:
        return self.flags


def build_revision(row: tuple, states: Iterable[tuple]) -> LoadedRevision:
    from controlplane.models import FlagState, flag_states_dict

    _router_id, _slug, _revision_id, number, config, phase, phase_domain, kill_switch = row[:8]
    flags = flag_states_dict(
        FlagState(name=name, enabled=enabled, rollout_percent=percent)
        for _rid, name, enabled, percent in states
    )
    experiment = row[9] if len(row) > 9 else None
    return LoadedRevision(number, config, phase, phase_domain, kill_switch, flags, experiment)


class TokenBucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.updated = now


class FlagServer:
    def __init__(
        self,
        *,
        recorder: ClientRecorder,
        recheck_seconds: float | None = None,
        rate_per_second: float | None = None,
        burst: float | None = None,
        flush_seconds: float | None = None,
        max_long_polls: int | None = None,
        max_long_polls_per_key: int | None = None,
    ) -> None:
        if recheck_seconds is None:
            from django.conf import settings

            recheck_seconds = float(getattr(settings, "ROUTEPLANE_FLAGS_RECHECK_SECONDS", 0.5))
        self.recheck_seconds = recheck_seconds
        self.rate = rate_per_second or float(os.environ.get("ROUTEPLANE_FLAGS_RATE", "1000"))
        self.burst = burst or float(os.environ.get("ROUTEPLANE_FLAGS_BURST", str(self.rate * 5)))
        self.flush_seconds = flush_seconds or float(
            os.environ.get("ROUTEPLANE_CLIENT_FLUSH_SECONDS", "2")
        )
        # Held long-polls cost a socket and a little memory each: bounded per process and per
        # key, so one key cannot take every file descriptor. Beyond a cap a poll answers at once.
        self.max_long_polls = max_long_polls or int(
            os.environ.get("ROUTEPLANE_FLAGS_MAX_LONG_POLLS", "5000")
        )
        self.max_long_polls_per_key = max_long_polls_per_key or int(
            os.environ.get("ROUTEPLANE_FLAGS_MAX_LONG_POLLS_PER_KEY", "2000")
        )
        self.recorder = recorder
        self.keys: dict[str, KeyEntry] = {}
        self.docs: dict[int, RenderedDocument] = {}
        self.ready = False
        # Set when the server shuts down: held polls are answered, new ones are not held.
        self.closing = False
        self._held: dict[str, int] = {}
        self._held_total = 0
        self._changed: dict[int, asyncio.Event] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._dirty: set[int] = set()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready_event: asyncio.Event | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the listener/refresher on the running loop (idempotent)."""
        loop = asyncio.get_running_loop()
        if self.started and self._loop is loop:
            return
        self._loop = loop
        self._wake = asyncio.Event()
        self._ready_event = asyncio.Event()
        self._changed = {}
        self.recorder.external_flusher = True
        self._task = loop.create_task(self._supervise(), name="routeplane-flagserver")

    def ready_event(self) -> asyncio.Event | None:
        """Set while the cache is ready (None before start)."""
        return self._ready_event

    async def wait_ready(self, timeout: float) -> bool:
        if self._ready_event is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready_event.wait(), timeout)
        return self.ready

    async def stop(self) -> None:
        task, self._task = self._task, None
        self.ready = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Last flush so a clean shutdown loses no "last seen".
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                conn = await psycopg.AsyncConnection.connect(**connection_kwargs(), autocommit=True)
                async with conn:
                    await self._flush(conn)
        for event in self._changed.values():
            event.set()

    # --- the connection loop -----------------------------------------------------------

    async def _supervise(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._connected_session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.ready:
                    log.warning("flags fast path lost PostgreSQL (%s); serving via Django", exc)
                self._set_not_ready()
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)
            if self.ready:
                delay = 0.1

    def _set_not_ready(self) -> None:
        self.ready = False
        if self._ready_event is not None:
            self._ready_event.clear()
        # Waiters must not sit on a cache nobody refreshes: wake them; they re-check `ready`.
        self._wake_all()

    async def _connected_session(self) -> None:
        params = connection_kwargs()
        listen = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        query = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        async with listen, query:
            await listen.execute(f"LISTEN {REVISIONS_CHANNEL}")
            await listen.execute(f"LISTEN {KEYS_CHANNEL}")
            # Listening before loading: nothing committed in between can be missed.
            await self._load_keys(query)
            await self._load_all(query)
            self.ready = True
            assert self._ready_event is not None
            self._ready_event.set()
            log.info("flags fast path ready: %d routers, %d keys", len(self.docs), len(self.keys))
            tasks = [
                asyncio.create_task(self._listen(listen)),
                asyncio.create_task(self._refresh(query)),
                asyncio.create_task(self._flush_loop(query)),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self, conn: psycopg.AsyncConnection) -> None:
        while True:
            async for note in conn.notifies(timeout=5.0):
                if note.channel == KEYS_CHANNEL:
                    self._revoke(note.payload)
                elif note.channel == REVISIONS_CHANNEL:
                    self._on_revision(note.payload)
            if conn.closed or conn.broken:
                raise psycopg.OperationalError("listen connection closed")

    def _on_revision(self, payload: str) -> None:
        try:
            router_id_text, _slug, number_text = payload.split(":", 2)
            router_id, number = int(router_id_text), int(number_text)
        except ValueError:
            log.warning("ignoring malformed revision notification %r", payload)
            return
        current = self.docs.get(router_id)
        if current is None or number != current.revision:
            self._dirty.add(router_id)
            assert self._wake is not None
            self._wake.set()

    def _revoke(self, key_hash: str) -> None:
        entry = self.keys.pop(key_hash, None)
        self._buckets.pop(key_hash, None)
        if entry is not None:
            log.info("API key %s revoked: removed from the flags fast path", entry.prefix)
            self._wake_router(entry.router_id)

    async def _refresh(self, conn: psycopg.AsyncConnection) -> None:
        assert self._wake is not None
        next_check = time.monotonic() + self.recheck_seconds
        while True:
            timeout = max(0.0, next_check - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if self._dirty:
                dirty, self._dirty = self._dirty, set()
                await self._load_routers(conn, dirty)
            if time.monotonic() >= next_check:
                await self._recheck(conn)
                next_check = time.monotonic() + self.recheck_seconds

    async def _recheck(self, conn: psycopg.AsyncConnection) -> None:
        """The self-healing pass: one query for every router's current revision, one for keys."""
        cursor = await conn.execute(ROUTERS_SQL)
        rows = await cursor.fetchall()
        live = {row[0]: row for row in rows}
        stale = [rid for rid, row in live.items() if self._revision_of(rid) != row[3]]
        for gone in set(self.docs) - set(live):
            self.docs.pop(gone, None)
            self._wake_router(gone)
        if stale:
            log.info("re-check found %d router(s) changed without a notification", len(stale))
            await self._load_routers(conn, stale)
        await self._load_keys(conn)

    def _revision_of(self, router_id: int) -> int | None:
        doc = self.docs.get(router_id)
        return doc.revision if doc is not None else None

    async def _load_all(self, conn: psycopg.AsyncConnection) -> None:
        cursor = await conn.execute(ROUTERS_SQL)
        ids = [row[0] for row in await cursor.fetchall()]
        self.docs = {rid: doc for rid, doc in self.docs.items() if rid in set(ids)}
        await self._load_routers(conn, ids)

    async def _load_routers(self, conn: psycopg.AsyncConnection, router_ids: Iterable[int]):
        ids = list(router_ids)
        if not ids:
            return
        cursor = await conn.execute(REVISIONS_SQL, [ids])
        rows = await cursor.fetchall()
        revision_ids = [row[2] for row in rows]
        cursor = await conn.execute(FLAG_STATES_SQL, [revision_ids])
        states: dict[int, list[tuple]] = {}
        for state in await cursor.fetchall():
            states.setdefault(state[0], []).append(state)
        for row in rows:
            router_id, slug = row[0], row[1]
            current = self.docs.get(router_id)
            if current is not None and current.revision == row[3]:
                continue
            revision = build_revision(row, states.get(row[2], []))
            self.docs[router_id] = render_document(
                router_id=router_id, slug=slug, revision=revision
            )
            self._wake_router(router_id)
            if current is not None:  # a change, not this process's first load
                metrics.PROPAGATION_SECONDS.observe(max(0.0, time.time() - row[8].timestamp()))

    async def _load_keys(self, conn: psycopg.AsyncConnection) -> None:
        cursor = await conn.execute(KEYS_SQL)
        fresh = {
            h: KeyEntry(router_id, role, prefix, key_id)
            for h, router_id, role, prefix, key_id in await cursor.fetchall()
        }
        for key_hash in set(self.keys) - set(fresh):
            self._revoke(key_hash)
        self.keys = fresh

    # --- client recording --------------------------------------------------------------

    async def _flush_loop(self, conn: psycopg.AsyncConnection) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self._flush(conn)

    async def _flush(self, conn: psycopg.AsyncConnection) -> None:
        seen, keys = self.recorder.drain()
        if not seen and not keys:
            return
        refused: list[tuple[int, int]] = []
        try:
            async with conn.transaction():
                if seen:
                    cursor = await conn.execute(UPSERT_SQL, upsert_params(seen))
                    refused = await cursor.fetchall()
                if keys:
                    await conn.execute(KEYS_USED_SQL, keys_params(keys))
        except BaseException:
            self.recorder.restore(seen, keys)
            raise
        self.recorder.warn_refused(refused)

    # --- waiting -----------------------------------------------------------------------

    def _wake_router(self, router_id: int) -> None:
        event = self._changed.pop(router_id, None)
        if event is not None:
            event.set()

    def _wake_all(self) -> None:
        events, self._changed = self._changed, {}
        for event in events.values():
            event.set()

    def changed_event(self, router_id: int) -> asyncio.Event:
        event = self._changed.get(router_id)
        if event is None:
            event = self._changed[router_id] = asyncio.Event()
        return event

    def shut_down_waiters(self) -> None:
        """Shutdown has begun: wake every held poll (each answers at once) and hold no more."""
        self.closing = True
        self._wake_all()
        if self._ready_event is not None:
            self._ready_event.set()  # polls held for a reconnect go too

    @contextlib.contextmanager
    def long_poll_slot(self, key_hash: str) -> Iterator[bool]:
        """Yields whether this poll may be held (caps per key and per process, not closing)."""
        held = self._held.get(key_hash, 0)
        if (
            self.closing
            or self._held_total >= self.max_long_polls
            or held >= self.max_long_polls_per_key
        ):
            yield False
            return
        self._held[key_hash] = held + 1
        self._held_total += 1
        try:
            yield True
        finally:
            self._held_total -= 1
            left = self._held[key_hash] - 1
            if left:
                self._held[key_hash] = left
            else:
                del self._held[key_hash]

    # --- authentication ----------------------------------------------------------------

    def authenticate(self, authorization: bytes) -> tuple[str, KeyEntry] | None:
        """(key hash, entry) for an `Authorization: Bearer <key>` header whose key this cache
        knows as active; None otherwise (no or malformed header, unknown, new or revoked key,
        keys not loaded yet): the caller hands the request to Django, which decides."""
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        hashed = key_hash(token)
        entry = self.keys.get(hashed)
        return None if entry is None else (hashed, entry)

    # --- rate limit --------------------------------------------------------------------

    def retry_after(self, key_hash: str) -> int:
        """0 when the request may go on; else seconds to wait (token bucket per key)."""
        now = time.monotonic()
        bucket = self._buckets.get(key_hash)
        if bucket is None:
            bucket = self._buckets[key_hash] = TokenBucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
