"""The ASGI fast path for `GET` (and `HEAD`) `/api/v1/flags`, in front of Django.

Routers poll this endpoint forever, so it answers from memory: no Django request cycle, no
database, and a long-poll is an `await` on an asyncio.Event. Anything it cannot answer with
certainty (unknown or new key, cache not loaded, PostgreSQL connection lost, any other path or
method) goes to the Django app, whose DRF view gives the same bytes and ETag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from controlplane import metrics
from controlplane.flagdoc import etag_matches
from controlplane.flagserver.server import FlagServer

log = logging.getLogger("controlplane.flagserver")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FLAGS_PATH = "/api/v1/flags"
FLAGS_METHODS = ("GET", "HEAD")
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
        if kind == "http" and scope["path"] == FLAGS_PATH and scope["method"] in FLAGS_METHODS:
            if not self.server.started:
                self.server.start()  # servers that send no lifespan events
            request = ReadAhead(receive)
            if await self._serve(scope, request, send):
                return
            await self.django_app(scope, request.replay(), _counting(send))
            return
        await self.django_app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.server.start()
                    on_shutdown_signal(self.server.shut_down_waiters)
                    # Not required: until ready, polls are answered by Django.
                    await self.server.wait_ready(3.0)
                except Exception as exc:
                    log.exception("flags fast path failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.server.shut_down_waiters()
                with contextlib.suppress(Exception):
                    await self.server.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _serve(self, scope: Scope, request: ReadAhead, send: Send) -> bool:
        """Answer from memory and return True, or return False to hand over to Django.

        A poll is authenticated (against the keys in memory) before it is held; one this cache
        cannot authenticate goes to Django, which answers at once.
        """
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
        found = server.authenticate(authorization)
        if found is None:
            return False
        hashed, entry = found
        retry = server.retry_after(hashed)
        if retry:
            await _send(
                send,
                scope,
                429,
                orjson.dumps({"detail": "Too many flag polls."}),
                [(b"retry-after", str(retry).encode())],
            )
            return True
        inm = if_none_match.decode("latin-1")
        with server.long_poll_slot(hashed) as may_hold:
            if not may_hold:
                wait = 0.0
                deadline = loop.time()
            if not server.ready:
                # Keys known from before the connection was lost: hold a long-poll here until
                # the cache is back (no thread, no database connection); else Django answers.
                if not (inm and wait > 0 and await self._wait_ready(scope, request, deadline)):
                    return False
                found = server.authenticate(authorization)
                if found is None:
                    return False  # revoked meanwhile: Django says 401
            document = server.docs.get(entry.router_id)
            if document is None:
                return False
            held = bool(inm) and wait > 0 and etag_matches(inm, document.etag)
            if held:
                metrics.LONG_POLL_WAITERS.inc()
            try:
                while inm and etag_matches(inm, document.etag) and not server.closing:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    woken = await wait_or_disconnect(
                        server.changed_event(entry.router_id), request, remaining
                    )
                    if woken is None:
                        return True  # the client left: nobody to answer
                    if not woken:
                        break
                    # Woken: a new revision, a revoked key, the cache went stale, or shutdown.
                    if not server.ready and not server.closing:
                        if not await self._wait_ready(scope, request, deadline):
                            return False
                    if hashed not in server.keys:
                        return False
                    document = server.docs.get(entry.router_id)
                    if document is None:
                        return False
            finally:
                if held:
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
            await _send(send, scope, 304, b"", [(b"etag", document.etag.encode())], json=False)
        else:
            await _send(send, scope, 200, document.body, [(b"etag", document.etag.encode())])
        return True

    async def _wait_ready(self, scope: Scope, request: ReadAhead, deadline: float) -> bool:
        """While the cache reconnects, hold a long-poll here, where waiting costs no thread.

        Django's view answers at once, so a poll that outlives the outage goes to it with its
        wait used up.
        """
        server = self.server
        remaining = deadline - asyncio.get_running_loop().time()
        ready = server.ready_event()
        if remaining > 0 and ready is not None and not server.closing:
            await wait_or_disconnect(ready, request, remaining)
        if server.ready and not server.closing:
            return True
        scope["query_string"] = without_wait(scope.get("query_string", b""))
        return False


class ReadAhead:
    """The request's receive(), watched for a disconnect while a poll is held.

    Watching reads the request's (empty) body; should the poll then go to Django after all,
    `replay()` gives Django a receive() that returns those messages first.
    """

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.body: list[MutableMapping[str, Any]] = []
        self.body_complete = False

    async def disconnected(self) -> None:
        """Returns once the client has gone."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return
            if not self.body_complete:
                self.body.append(message)
                self.body_complete = not message.get("more_body", False)

    def replay(self) -> Receive:
        pending = list(self.body)

        async def receive() -> MutableMapping[str, Any]:
            return pending.pop(0) if pending else await self.receive()

        return receive


async def wait_or_disconnect(
    event: asyncio.Event, request: ReadAhead, timeout: float
) -> bool | None:
    """True when `event` is set, False after `timeout`, None when the client disconnected.

    A GET's body is complete after the first receive(), so the next one returns only once the
    client is gone: a held poll whose client left frees its slot at once.
    """
    waiter = asyncio.ensure_future(event.wait())
    gone = asyncio.ensure_future(request.disconnected())
    try:
        done, _ = await asyncio.wait({waiter, gone}, timeout=timeout, return_when=FIRST_COMPLETED)
    finally:
        waiter.cancel()
        gone.cancel()
    if waiter in done:
        return True
    if gone in done:
        return None
    return False


def on_shutdown_signal(callback: Callable[[], None]) -> None:
    """Call `callback` on the loop when SIGINT/SIGTERM arrive, besides the server's own handler.

    uvicorn answers a shutdown signal by waiting for running requests (up to
    --timeout-graceful-shutdown), then cancelling them with an error in the log; it tells the app
    only afterwards (lifespan shutdown). Held long-polls must answer before that wait ends, so
    chain onto the handler the server installed (only a callable one: a default handler is not
    ours to change).
    """
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def handler(number: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
            loop.call_soon_threadsafe(callback)
            previous(number, frame)

        try:
            signal.signal(signum, handler)
        except ValueError:  # not the main thread: no signals to chain
            return


def without_wait(query_string: bytes) -> bytes:
    return b"&".join(p for p in query_string.split(b"&") if p and not p.startswith(b"wait="))


async def _send(
    send: Send,
    scope: Scope,
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
    # HEAD: the headers of the GET (content-length included), no body.
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
    metrics.count_flags_response(status, fast=True)


def _counting(send: Send) -> Send:
    """`send` that counts the status of a flags poll answered by Django."""

    async def counting_send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            metrics.count_flags_response(message["status"], fast=False)
        await send(message)

    return counting_send
