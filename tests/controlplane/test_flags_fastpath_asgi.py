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
OTHER_KEY = "rp_other-key-for-the-asgi-fast-path-9876543210"
DOC = RenderedDocument(7, "checkout", 3, b'{"revision": 3}', '"etag-3"')


class FedServer(FlagServer):
    """A FlagServer whose state the test sets: no listener task, no database."""

    @property
    def started(self) -> bool:
        return True

    def know_keys(self) -> None:
        """The keys of an earlier session: known, while the cache is not ready."""
        self.keys = {
            key_hash(KEY): KeyEntry(router_id=7, role="router", prefix="rp_test", key_id=1),
            key_hash(OTHER_KEY): KeyEntry(router_id=7, role="router", prefix="rp_oth", key_id=2),
        }

    def go_ready(self) -> None:
        self.know_keys()
        self.docs = {7: DOC}
        self.ready = True
        self._ready_event.set()


class Django:
    """Stands in for the Django app: records what the fast path handed over."""

    def __init__(self) -> None:
        self.query_strings: list[bytes] = []
        self.received: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.query_strings.append(scope["query_string"])
        # Django reads the request body first: it must get it even if the fast path read ahead.
        self.received.append((await asyncio.wait_for(receive(), 2))["type"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def poll(
    app: FlagsFastPath,
    query: bytes,
    etag: str | None = '"etag-3"',
    *,
    method: str = "GET",
    key: str = KEY,
    gone: asyncio.Event | None = None,
) -> dict:
    """One request through the app; `gone` set = the client disconnects."""
    headers = [(b"authorization", f"Bearer {key}".encode())]
    if etag:
        headers.append((b"if-none-match", etag.encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": "/api/v1/flags",
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 5000),
    }
    sent: list[dict] = []
    received = 0

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        # As a server does: the (empty) body first, then nothing until the client leaves.
        nonlocal received
        received += 1
        if received == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await (gone or asyncio.Event()).wait()
        return {"type": "http.disconnect"}

    started = asyncio.get_running_loop().time()
    await app(scope, receive, send)
    if not sent:
        return {"status": None, "seconds": asyncio.get_running_loop().time() - started}
    return {
        "status": sent[0]["status"],
        "headers": dict(sent[0]["headers"]),
        "body": b"".join(m.get("body", b"") for m in sent[1:]),
        "seconds": asyncio.get_running_loop().time() - started,
    }


def make_app(**limits: int) -> tuple[FlagsFastPath, FedServer, Django]:
    recorder = ClientRecorder()
    recorder.external_flusher = True  # no flush thread: nothing here has a database
    server = FedServer(recorder=recorder, recheck_seconds=60, **limits)
    server._ready_event = asyncio.Event()
    django = Django()
    return FlagsFastPath(django, server), server, django


def test_not_ready__long_poll_held_in_the_fast_path_until_ready():
    async def scenario() -> dict:
        app, server, django = make_app()
        server.know_keys()  # a reconnect: the keys of the last session authenticate the poll
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
        app, server, django = make_app()
        server.know_keys()
        return await poll(app, b"client=a&wait=0.3"), django.query_strings

    result, handed = asyncio.run(scenario())
    assert result["status"] == 299
    assert result["seconds"] >= 0.3
    assert handed == [b"client=a"]  # Django will not hold it (and a thread) a second time


def test_not_ready__plain_poll_goes_to_django_at_once():
    async def scenario() -> tuple[dict, list[bytes]]:
        app, server, django = make_app()
        server.know_keys()
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


def test_keys_never_loaded__long_poll_not_held__django_answers_at_once():
    # Nothing authenticates the key yet (first start): it must not be held unauthenticated.
    async def scenario() -> tuple[dict, list[bytes]]:
        app, _server, django = make_app()
        return await poll(app, b"wait=5"), django.query_strings

    result, handed = asyncio.run(scenario())
    assert result["status"] == 299
    assert result["seconds"] < 0.5
    assert handed == [b"wait=5"]  # Django answers at once: its view never holds a poll


def test_unknown_key__long_poll_not_held__django_answers_at_once():
    async def scenario() -> tuple[dict, list[bytes]]:
        app, server, django = make_app()
        server.go_ready()
        return await poll(app, b"wait=5", key="rp_unknown"), django.query_strings

    result, handed = asyncio.run(scenario())
    assert result["status"] == 299
    assert result["seconds"] < 0.5


def test_head__answered_by_the_fast_path__headers_of_get_without_body():
    async def scenario() -> tuple[dict, dict, list[bytes]]:
        app, server, django = make_app()
        server.go_ready()
        get = await poll(app, b"", etag=None)
        head = await poll(app, b"", etag=None, method="HEAD")
        return get, head, django.query_strings

    get, head, handed = asyncio.run(scenario())
    assert handed == []
    assert head["status"] == get["status"] == 200
    assert head["headers"] == get["headers"]
    assert head["headers"][b"content-length"] == str(len(DOC.body)).encode()
    assert get["body"] == DOC.body
    assert head["body"] == b""


def test_head_long_poll__held_in_the_fast_path__answered_on_change():
    async def scenario() -> tuple[dict, list[bytes]]:
        app, server, django = make_app()
        server.go_ready()

        def publish() -> None:
            server.docs[7] = RenderedDocument(7, "checkout", 4, b'{"revision": 4}', '"etag-4"')
            server._wake_router(7)

        asyncio.get_running_loop().call_later(0.3, publish)
        return await poll(app, b"wait=60", method="HEAD"), django.query_strings

    result, handed = asyncio.run(scenario())
    assert handed == []
    assert result["status"] == 200
    assert result["headers"][b"etag"] == b'"etag-4"'
    assert result["body"] == b""
    assert 0.2 < result["seconds"] < 5


def test_long_polls__per_key_cap__the_next_one_answers_at_once():
    async def scenario() -> tuple[list[dict], dict, dict]:
        app, server, _django = make_app(max_long_polls_per_key=2)
        server.go_ready()
        held = [asyncio.create_task(poll(app, b"wait=1")) for _ in range(2)]
        await asyncio.sleep(0.1)
        beyond = await poll(app, b"wait=60")
        other_key = await poll(app, b"wait=1", key=OTHER_KEY)  # a cap per key
        return await asyncio.gather(*held), beyond, other_key

    held, beyond, other_key = asyncio.run(scenario())
    assert [r["status"] for r in held] == [304, 304]
    assert all(r["seconds"] >= 0.9 for r in held)
    assert beyond["status"] == 304
    assert beyond["seconds"] < 0.5
    assert other_key["seconds"] >= 0.9


def test_long_polls__per_process_cap__the_next_one_answers_at_once():
    async def scenario() -> tuple[list[dict], dict]:
        app, server, _django = make_app(max_long_polls=2)
        server.go_ready()
        held = [asyncio.create_task(poll(app, b"wait=1", key=key)) for key in (KEY, OTHER_KEY)]
        await asyncio.sleep(0.1)
        beyond = await poll(app, b"wait=60", key=OTHER_KEY)
        return await asyncio.gather(*held), beyond

    held, beyond = asyncio.run(scenario())
    assert all(r["seconds"] >= 0.9 for r in held)
    assert beyond["status"] == 304
    assert beyond["seconds"] < 0.5


def test_long_poll__client_gone__slot_freed_at_once():
    async def scenario() -> tuple[dict, dict]:
        app, server, _django = make_app(max_long_polls_per_key=1)
        server.go_ready()
        gone = asyncio.Event()
        first = asyncio.create_task(poll(app, b"wait=60", gone=gone))
        await asyncio.sleep(0.1)
        gone.set()
        left = await asyncio.wait_for(first, 2)
        held_again = await poll(app, b"wait=0.5")
        return left, held_again

    left, held_again = asyncio.run(scenario())
    assert left["status"] is None  # nobody to answer
    assert held_again["seconds"] >= 0.4  # the slot was free again: held


def test_revoked_while_held__django_answers__request_body_replayed_to_it():
    async def scenario() -> tuple[dict, Django]:
        app, server, django = make_app()
        server.go_ready()

        def revoke() -> None:
            server._revoke(key_hash(KEY))

        asyncio.get_running_loop().call_later(0.2, revoke)
        return await poll(app, b"wait=60"), django

    result, django = asyncio.run(scenario())
    assert result["status"] == 299
    assert django.received == ["http.request"]
