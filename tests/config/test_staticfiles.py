"""Static files (the API docs' assets) under ASGI: served whole, with no warning."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import drf_spectacular_sidecar
import pytest
from django.core.asgi import get_asgi_application

ASSET = "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"


def asgi_get(path: str, method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through Django's ASGI handler, as uvicorn would send it."""
    messages: list[dict] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected until the answer is sent
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        messages.append(message)

    asyncio.run(get_asgi_application()(scope, receive, send))
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], {k.lower(): v for k, v in start["headers"]}, body


@pytest.mark.parametrize("debug", [True, False])
def test_docs_asset_under_asgi__served_whole_without_sync_iterator_warning(settings, debug):
    settings.DEBUG = debug
    expected = (Path(drf_spectacular_sidecar.__file__).parent / "static" / ASSET).read_bytes()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, headers, body = asgi_get(f"/static/{ASSET}")

    assert status == 200
    assert body == expected
    assert headers[b"content-type"].startswith(b"text/css")
    assert [str(w.message) for w in caught if "iterator" in str(w.message)] == []


def test_head_of_asset_under_asgi__no_body_no_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, headers, body = asgi_get(f"/static/{ASSET}", method="HEAD")

    assert (status, body) == (200, b"")
    assert int(headers[b"content-length"]) > 0
    assert [str(w.message) for w in caught if "iterator" in str(w.message)] == []
