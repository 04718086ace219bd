"""The body limit in the ASGI wrapper: 413 before Django reads (or buffers) the body."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import orjson
import pytest

from controlplane.bodylimit import BodyLimit, body_limit
from tests import flags_live
from tests.flags_live import live_env, uvicorn_server

flags_database_url = flags_live.flags_database_url  # the test database for the live server

LIMIT = 1000


class App:
    """Stands in for Django: reads the whole body, then answers 200 with its length."""

    def __init__(self) -> None:
        self.calls = 0
        self.aborted = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.aborted = True
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


def run(chunks: list[bytes], content_length: int | None) -> tuple[App, list[dict], int]:
    app = App()
    headers = [(b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {"type": "http", "method": "POST", "path": "/api/v1/events", "headers": headers}
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(BodyLimit(app, limit=LIMIT)(scope, receive, send))
    return app, sent, len(pending)


def test_content_length_over_the_limit__413_before_the_app_runs():
    app, sent, unread = run([b"x" * 10], content_length=LIMIT + 1)

    assert app.calls == 0
    assert unread == 1  # not a byte of the body was read
    assert sent[0]["status"] == 413
    assert orjson.loads(sent[1]["body"]) == {"errors": {"body": ["Request body too large."]}}
    assert (b"content-type", b"application/json") in sent[0]["headers"]


def test_streamed_body_past_the_limit__413__reading_stops__app_sees_a_disconnect():
    chunks = [b"x" * 400] * 10  # 4000 bytes, no Content-Length (chunked)

    app, sent, unread = run(chunks, content_length=None)

    assert app.aborted
    assert unread == 7  # stopped at the chunk that passed 1000 bytes
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert orjson.loads(sent[1]["body"]) == {"errors": {"body": ["Request body too large."]}}


def test_within_the_limit__passed_through_untouched():
    app, sent, _ = run([b"x" * 500, b"y" * 500], content_length=None)

    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"1000"
    app, sent, _ = run([b"x" * LIMIT], content_length=LIMIT)
    assert sent[1]["body"] == str(LIMIT).encode()


def test_limit__is_django_data_upload_max_memory_size(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 12345

    assert body_limit() == 12345
    assert BodyLimit(App()).limit == 12345


# --- through the real server -------------------------------------------------------------


def _exchange(base: str, head: bytes, body_parts: list[bytes]) -> tuple[int, bytes]:
    """Send a raw request (stopping early if the server has answered); return status, body."""
    host, port = base.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        for part in body_parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.fixture(scope="module")
def live_app(flags_database_url):
    """controlplane.asgi:application under uvicorn (1 worker), the default 5 MB limit."""
    with uvicorn_server(live_env(flags_database_url)) as (base, _process):
        yield base


@pytest.mark.slow
def test_live__declared_length_over_5mb__413_at_once_without_auth(live_app):
    limit = 5 * 1024 * 1024
    head = (
        b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {limit + 1}\r\n\r\n".encode()
    )

    status, body = _exchange(live_app, head, [b"{"])  # the body never comes

    assert status == 413
    assert orjson.loads(body) == {"errors": {"body": ["Request body too large."]}}


@pytest.mark.slow
def test_live__chunked_body_past_5mb__413(live_app):
    head = (
        b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer rp_whatever\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 65536
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 100 + [b"0\r\n\r\n"]  # 6.25 MB

    status, body = _exchange(live_app, head, parts)

    assert status == 413
    assert orjson.loads(body) == {"errors": {"body": ["Request body too large."]}}
