"""The ASGI fast path for `GET /api/v1/flags`, in front of Django.

Routers poll this endpoint forever, so it answers from memory: no Django request cycle, no
database, and a long-poll is an `await` on an asyncio.Event. Anything it cannot answer with
certainty (unknown or new key, cache not loaded, PostgreSQL connection lost, any other path or
method) goes to the Django app, whose DRF view gives the same bytes and ETag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from controlplane import metrics
from controlplane.flagdoc import etag_matches
from controlplane.flagserver.server import FlagServer, key_hash

log = logging.getLogger("controlplane.flagserver")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FLAGS_PATH = "/api/v1/flags"
MAX_WAIT_SECONDS = 60.0


def clamp_wait(query_string: bytes) -> float:
    if b"wait=" not in query_string:
        return 0.0
    values = parse_qs(query_string.decode("latin-1")).get("wait")
    try:
        return max(0.0, min(float(values[-1]), MAX_WAIT_SECONDS)) if values else 0.0
    except ValueError:
        return 0.0


class FlagsFastPath:
    def __init__(self, django_app: ASGIApp, server: FlagServer) -> None:
        self.django_app = django_app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind == "http" and scope["path"] == FLAGS_PATH and scope["method"] == "GET":
            if not self.server.started:
                self.server.start()  # servers that send no lifespan events
            if await self._serve(scope, send):
                return
            await self.django_app(scope, receive, _counting(send))
            return
        await self.django_app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.server.start()
                    # Not required: until ready, polls are answered by Django.
                    await self.server.wait_ready(3.0)
                except Exception as exc:
                    log.exception("flags fast path failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                with contextlib.suppress(Exception):
                    await self.server.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _serve(self, scope: Scope, send: Send) -> bool:
        """Answer from memory and return True, or return False to hand over to Django."""
        server = self.server
        loop = asyncio.get_running_loop()
        wait = clamp_wait(scope.get("query_string", b""))
        deadline = loop.time() + wait
        authorization = if_none_match = client_id = user_agent = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"if-none-match":
                if_none_match = value
            elif name == b"x-routeplane-client":
                client_id = value
            elif name == b"user-agent":
                user_agent = value
        if not server.ready and not (if_none_match and await self._wait_ready(scope, deadline)):
            return False
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        hashed = key_hash(token)
        entry = server.keys.get(hashed)
        if entry is None:
            return False
        document = server.docs.get(entry.router_id)
        if document is None:
            return False
        retry = server.retry_after(hashed)
        if retry:
            await _send(
                send,
                429,
                orjson.dumps({"detail": "Too many flag polls."}),
                [(b"retry-after", str(retry).encode())],
            )
            return True
        inm = if_none_match.decode("latin-1")
        if inm and etag_matches(inm, document.etag) and wait > 0:
            metrics.LONG_POLL_WAITERS.inc()
            try:
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    event = server.changed_event(entry.router_id)
                    try:
                        await asyncio.wait_for(event.wait(), remaining)
                    except TimeoutError:
                        break
                    # Woken: a new revision, a revoked key, or the cache went stale.
                    if not server.ready and not await self._wait_ready(scope, deadline):
                        return False
                    if hashed not in server.keys:
                        return False
                    document = server.docs.get(entry.router_id)
                    if document is None:
                        return False
                    if not etag_matches(inm, document.etag):
                        break
            finally:
                metrics.LONG_POLL_WAITERS.dec()
        client = scope.get("client")
        server.recorder.record(
            router_id=entry.router_id,
            client_id=client_id.decode("latin-1"),
            user_agent=user_agent.decode("latin-1"),
            revision=document.revision,
            ip=client[0] if client else None,
            key_hash=hashed,
        )
        if inm and etag_matches(inm, document.etag):
            await _send(send, 304, b"", [(b"etag", document.etag.encode())], json=False)
        else:
            await _send(send, 200, document.body, [(b"etag", document.etag.encode())])
        return True

    async def _wait_ready(self, scope: Scope, deadline: float) -> bool:
        """While the cache reconnects, hold a long-poll here, where waiting costs no thread.

        Django's view would hold a thread and a database connection per waiter (under ASGI,
        all its sync views share one thread), so a poll that outlives the outage goes to it
        with its wait used up: it answers at once.
        """
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining > 0 and await self.server.wait_ready(remaining):
            return True
        scope["query_string"] = without_wait(scope.get("query_string", b""))
        return False


def without_wait(query_string: bytes) -> bytes:
    return b"&".join(p for p in query_string.split(b"&") if p and not p.startswith(b"wait="))


async def _send(
    send: Send,
    status: int,
    body: bytes,
    extra: list[tuple[bytes, bytes]],
    *,
    json: bool = True,
) -> None:
    # x-routeplane-flags tells operators (and tests) which path answered.
    headers = [(b"cache-control", b"no-cache"), (b"x-routeplane-flags", b"fast"), *extra]
    if json:
        headers.append((b"content-type", b"application/json"))
    if status != 304:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    metrics.count_flags_response(status, fast=True)


def _counting(send: Send) -> Send:
    """`send` that counts the status of a flags poll answered by Django."""

    async def counting_send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            metrics.count_flags_response(message["status"], fast=False)
        await send(message)

    return counting_send
