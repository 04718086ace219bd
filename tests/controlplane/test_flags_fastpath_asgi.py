"""The fast path as an ASGI app, driven directly: what it does while its cache is not ready.

The FlagServer here is fed by the test (no PostgreSQL), so each state is set exactly.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controlplane.clients import ClientRecorder
from controlplane.flagdoc import RenderedDocument
from controlplane.flagserver.app import FlagsFastPath, without_wait
from controlplane.flagserver.server import FlagServer, KeyEntry, key_hash

KEY = "rp_test-key-for-the-asgi-fast-path-0123456789"
DOC = RenderedDocument(7, "checkout", 3, b'{"revision": 3}', '"etag-3"')


class FedServer(FlagServer):
    """A FlagServer whose state the test sets: no listener task, no database."""

    @property
    def started(self) -> bool:
        return True

    def go_ready(self) -> None:
        self.keys = {key_hash(KEY): KeyEntry(router_id=7, role="router", prefix="rp_test")}
        self.docs = {7: DOC}
        self.ready = True
        self._ready_event.set()


class Django:
    """Stands in for the Django app: records what the fast path handed over."""

    def __init__(self) -> None:
        self.query_strings: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.query_strings.append(scope["query_string"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def poll(app: FlagsFastPath, query: bytes, etag: str | None = '"etag-3"') -> dict:
    headers = [(b"authorization", f"Bearer {KEY}".encode())]
    if etag:
        headers.append((b"if-none-match", etag.encode()))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/flags",
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 5000),
    }
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    started = asyncio.get_running_loop().time()
    await app(scope, receive, send)
    return {
        "status": sent[0]["status"],
        "headers": dict(sent[0]["headers"]),
        "seconds": asyncio.get_running_loop().time() - started,
    }


def make_app() -> tuple[FlagsFastPath, FedServer, Django]:
    recorder = ClientRecorder()
    recorder.external_flusher = True  # no flush thread: nothing here has a database
    server = FedServer(recorder=recorder, recheck_seconds=60)
    server._ready_event = asyncio.Event()
    django = Django()
    return FlagsFastPath(django, server), server, django


def test_not_ready__long_poll_held_in_the_fast_path_until_ready():
    async def scenario() -> dict:
        app, server, django = make_app()
        asyncio.get_running_loop().call_later(0.2, server.go_ready)
        result = await poll(app, b"wait=5")
        assert django.query_strings == []
        return result

    result = asyncio.run(scenario())
    # Ready after 0.2 s, then a normal long-poll: nothing changed, so 304 when the wait ends.
    assert result["status"] == 304
    assert result["headers"][b"x-routeplane-flags"] == b"fast"
    assert result["seconds"] == pytest.approx(5, abs=0.5)


def test_not_ready_for_the_whole_wait__django_answers_with_the_wait_used_up():
    async def scenario() -> tuple[dict, list[bytes]]:
        app, _server, django = make_app()
        return await poll(app, b"client=a&wait=0.3"), django.query_strings

    result, handed = asyncio.run(scenario())
    assert result["status"] == 299
    assert result["seconds"] >= 0.3
    assert handed == [b"client=a"]  # Django will not hold it (and a thread) a second time


def test_not_ready__plain_poll_goes_to_django_at_once():
    async def scenario() -> tuple[dict, list[bytes]]:
        app, _server, django = make_app()
        return await poll(app, b"wait=5", etag=None), django.query_strings

    result, handed = asyncio.run(scenario())
    assert result["status"] == 299
    assert result["seconds"] < 0.2
    assert handed == [b"wait=5"]  # no If-None-Match: Django answers at once anyway


def test_cache_lost_while_waiting__waiter_stays_until_ready_again():
    async def scenario() -> dict:
        app, server, django = make_app()
        server.go_ready()
        loop = asyncio.get_running_loop()

        def lose() -> None:
            server._set_not_ready()

        def reconnect_with_a_new_revision() -> None:
            server.go_ready()
            server.docs[7] = RenderedDocument(7, "checkout", 4, b'{"revision": 4}', '"etag-4"')

        loop.call_later(0.1, lose)
        loop.call_later(0.3, reconnect_with_a_new_revision)
        result = await poll(app, b"wait=5")
        assert django.query_strings == []
        return result

    result = asyncio.run(scenario())
    assert result["status"] == 200
    assert result["headers"][b"etag"] == b'"etag-4"'
    assert result["seconds"] < 1.0


def test_without_wait__keeps_other_parameters():
    assert without_wait(b"wait=30") == b""
    assert without_wait(b"a=1&wait=30&b=2") == b"a=1&b=2"
    assert without_wait(b"") == b""
