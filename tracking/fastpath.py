"""The ASGI fast path for `POST /api/v1/events`, in front of Django.

Under ASGI, Django runs each sync view in a thread made for that request (asgiref's
ThreadSensitiveContext), so every batch paid for a new database connection and a new temporary
stage table, and a worker took one batch at a time. Here a request is authenticated from the
flags fast path's in-memory keys (FlagServer.authenticate, the same lookup), and the very code
of the DRF view (rate limit, then tracking.events_http.answer_events) runs in a small pool of
long-lived threads, each keeping its connection and stage table.

Anything it cannot answer with certainty goes to Django, whose view gives the same answer: the
key cache not ready, a key it does not know (yet), a key whose role may not post events, or an
unexpected error (the body is replayed to Django; ingestion is idempotent by event id). Body
size is limited before this by controlplane.bodylimit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections

from controlplane.api.throttling import key_rate_refusal
from controlplane.flagserver import FlagServer
from controlplane.flagserver.server import KeyEntry
from controlplane.models import Role
from tracking.events_http import answer_events

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

EVENTS_PATH = "/api/v1/events"
POSTING_ROLES = frozenset({Role.ROUTER, Role.OPERATOR})  # as tracking.api.views.CanPostEvents

Answer = tuple[int, dict[str, str], bytes]


class EventsFastPath:
    def __init__(self, app: ASGIApp, server: FlagServer, *, threads: int | None = None) -> None:
        self.app = app
        self.server = server
        # Each thread holds one database connection: threads x workers connections in all.
        self.threads = threads or int(os.environ.get("ROUTEPLANE_INGEST_THREADS", "4"))
        self._executor: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:  # made in the worker process, not before a fork
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="ingest")
        return self._executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == EVENTS_PATH and scope["method"] == "POST":
            entry = self._authenticate(scope)
            if entry is not None:
                await self._serve(scope, receive, send, entry)
                return
        await self.app(scope, receive, send)

    def _authenticate(self, scope: Scope) -> tuple[str, KeyEntry] | None:
        if not self.server.ready:  # keys may be stale (a revocation missed): Django decides
            return None
        for name, value in scope["headers"]:
            if name == b"authorization":
                found = self.server.authenticate(value)
                if found is not None and found[1].role in POSTING_ROLES:
                    return found
                return None
        return None

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, found: tuple[str, KeyEntry]
    ) -> None:
        key_hash, entry = found
        body = await read_body(receive)
        if body is None:
            return  # the client left (or the body limit answered 413 already)
        loop = asyncio.get_running_loop()
        try:
            status, headers, payload = await loop.run_in_executor(
                self.executor, answer_in_thread, entry, body
            )
        except Exception:
            log.exception("ingestion fast path failed; handing the batch to Django")
            await self.app(scope, replay(body, receive), send)
            return
        self.server.recorder.key_used(key_hash)  # last_used_at, flushed in batches
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-routeplane-ingest", b"fast"),  # which path answered, for operators and tests
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})


def answer_in_thread(entry: KeyEntry, body: bytes) -> Answer:
    """The DRF view's work after authentication: the per-key rate limit, then the batch."""
    close_old_connections()  # as Django around each request: drop a broken or old connection
    try:
        refusal = key_rate_refusal(entry.key_id)
        if refusal is not None:
            return refusal.status, refusal.headers, refusal.body
        status, payload = answer_events(router_id=entry.router_id, raw=body)
        return status, {}, payload
    finally:
        close_old_connections()


async def read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """receive() for Django after the body was read here: the body, then the server's own
    (which answers only when the client leaves; Django listens for that while it works)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
