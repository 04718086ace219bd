"""The request-body limit, enforced in the ASGI wrapper before Django reads a byte.

Django would buffer a body of any size (to disk past FILE_UPLOAD_MAX_MEMORY_SIZE) before the
view authenticates the request or checks its size. Here a declared Content-Length over the limit
is refused at once, and a streamed (chunked) body is cut off as soon as it passes the limit;
both answer 413 with the API's error shape. The limit is Django's DATA_UPLOAD_MAX_MEMORY_SIZE,
the one setting every other size check (the JSON parser, the events view) uses too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOO_LARGE_ERRORS = {"body": ["Request body too large."]}


def body_limit() -> int:
    from django.conf import settings

    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int | None = None) -> None:
        self.app = app
        self.limit = limit if limit is not None else body_limit()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:  # the server refuses these; never let one through unchecked
                    declared = self.limit + 1
                if declared > self.limit:
                    await send_too_large(send)
                    return
        await self.app(scope, *LimitedBody(receive, send, self.limit).wrapped())


class LimitedBody:
    """receive/send for the app: past the limit, answer 413 and tell the app the client left."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.received = 0
        self.refused = False
        self.started = False

    def wrapped(self) -> tuple[Receive, Send]:
        return self.receive, self.send

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refused = True
                if not self.started:
                    self.started = True
                    await send_too_large(self._send)
                # The app stops as for a client that left (Django: RequestAborted, no answer).
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 is the answer
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


async def send_too_large(send: Send) -> None:
    body = orjson.dumps({"errors": TOO_LARGE_ERRORS})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is not read: the connection cannot carry another request.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
