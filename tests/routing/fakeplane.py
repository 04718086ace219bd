"""A tiny stand-in control plane for SDK fault tests: answers flags the way the real one does,
or with 500s, garbage, 401s, a document without an ETag, or not at all, as a test sets `mode`.
Flag writes (PUT) answer `write_status` (401 and 403 with the real API's messages).

`POST events` and `POST events/outcomes` follow the API (README: API): events are
stored once per event_id; one outcome per event (the same again is a duplicate, a different one
is rejected), an outcome for an event not stored is rejected for its item. `post_status` other
than 200 answers every POST with that status instead. Each POST is kept in `posts` as
(path, API key, items)."""

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
        self.post_status = 200
        self.posts: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.events: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[str, dict[str, Any]] = {}
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

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                plane.requests.append({k.lower(): v for k, v in self.headers.items()})
                plane.paths.append(self.path)
                plane.handle_post(self, body)

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

    def handle_post(self, h: BaseHTTPRequestHandler, raw: bytes) -> None:
        if self.post_status != 200:
            body = orjson.dumps({"detail": f"HTTP {self.post_status}"})
            return self._send(h, self.post_status, body, {})
        key = (h.headers.get("Authorization") or "").removeprefix("Bearer ")
        path = urlsplit(h.path).path
        kind = "outcomes" if path.endswith("/events/outcomes") else "events"
        items = orjson.loads(raw)[kind]
        with self._cond:
            self.posts.append((path, key, items))
            accepted = duplicates = 0
            rejected = []
            for index, item in enumerate(items):
                event_id = item["event_id"]
                if kind == "events":
                    if event_id in self.events:
                        duplicates += 1
                    else:
                        self.events[event_id] = item
                        accepted += 1
                    continue
                if event_id not in self.events:
                    rejected.append({"index": index, "errors": {"event_id": ["Unknown event."]}})
                elif event_id not in self.outcomes:
                    self.outcomes[event_id] = item
                    accepted += 1
                elif self.outcomes[event_id] == item:
                    duplicates += 1
                else:
                    errors = {"event_id": ["This event already has a different outcome."]}
                    rejected.append({"index": index, "errors": errors})
        answer = {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}
        return self._send(h, 200, orjson.dumps(answer), {})

    def posted(self, kind: str = "events", key: str | None = None) -> list[dict[str, Any]]:
        """Every item POSTed of a kind ("events" or "outcomes"), with `key` if given."""
        return [
            item
            for path, used, items in list(self.posts)
            if path.endswith(f"/{kind}") and (key is None or used == key)
            for item in items
        ]

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
