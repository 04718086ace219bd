"""A tiny stand-in control plane for SDK fault tests: answers flags the way the real one does,
or with 500s, garbage, 401s, a document without an ETag, or not at all, as a test sets `mode`.
Flag writes (PUT) answer `write_status` (401 and 403 with the real API's messages)."""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from routing.evaluation import safe_default_document


def make_document(revision: int = 1, **flags_on: int) -> dict[str, Any]:
    document = safe_default_document()
    document["router"] = "fake"
    document["revision"] = revision
    for name, percent in flags_on.items():
        document["flags"][name] = {"enabled": True, "rollout_percent": percent}
    return document


class FakePlane:
    def __init__(self, port: int = 0) -> None:
        self.mode = "ok"  # ok | 500 | garbage | slow | 401 | no-etag
        self.slow_seconds = 10.0
        self.write_status = 403
        self.requests: list[dict[str, str]] = []
        self.paths: list[str] = []  # request line targets, e.g. "/api/v1/flags?wait=30"
        self._connections: set = set()
        self._cond = threading.Condition()
        self.set_document(make_document())
        self.server: ThreadingHTTPServer | None = None
        self.port = port
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_document(self, document: dict[str, Any]) -> None:
        with self._cond:
            self.document = document
            self.body = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
            self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'
            self._cond.notify_all()

    def start(self) -> None:
        plane = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                plane._connections.add(self.connection)

            def do_GET(self) -> None:  # noqa: N802
                plane.requests.append({k.lower(): v for k, v in self.headers.items()})
                plane.paths.append(self.path)
                plane.handle(self)

            def do_PUT(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                plane.requests.append({k.lower(): v for k, v in self.headers.items()})
                plane.paths.append(self.path)
                plane.handle_write(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        # A killed server drops its keep-alive connections too.
        for conn in list(self._connections):
            try:
                conn.shutdown(2)
            except OSError:
                pass
        self._connections.clear()
        with self._cond:
            self._cond.notify_all()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode == "slow":
            time.sleep(self.slow_seconds)
        if self.mode == "500":
            return self._send(h, 500, b"oops", {})
        if self.mode == "401":
            return self._send(h, 401, b'{"detail": "Invalid or revoked API key."}', {})
        if self.mode == "garbage":
            return self._send(h, 200, b"<html>not json", {"ETag": '"x"'})
        if self.mode == "no-etag":
            return self._send(h, 200, self.body, {})
        query = parse_qs(urlsplit(h.path).query)
        wait = min(float(query.get("wait", ["0"])[0]), 60.0)
        inm = h.headers.get("If-None-Match")
        with self._cond:
            if inm == self.etag and wait > 0:
                self._cond.wait_for(lambda: self.etag != inm or self.server is None, wait)
            body, etag = self.body, self.etag
        if inm == etag:
            return self._send(h, 304, b"", {"ETag": etag})
        return self._send(h, 200, body, {"ETag": etag})

    def handle_write(self, h: BaseHTTPRequestHandler) -> None:
        details = {
            401: "Invalid or revoked API key.",
            403: "This action needs an operator API key.",
        }
        body = orjson.dumps({"detail": details.get(self.write_status, "error")})
        return self._send(h, self.write_status, body, {})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict) -> None:
        try:
            h.send_response(status)
            for name, value in headers.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(body)))
            h.send_header("Content-Type", "application/json")
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass
