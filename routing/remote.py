"""Remote mode: where the control plane is, who we are, and the SDK's one HTTP helper (stdlib).

Every request the SDK makes goes through `request()`, on a connection from `open_connection()`
(a caller's keep-alive connection, or a fresh one per request).

Remote mode is on when both a URL and an API key are given or set in the environment
(ROUTEPLANE_URL, ROUTEPLANE_API_KEY); otherwise the SDK runs locally, in memory.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

SDK_VERSION = "0.1.0"
USER_AGENT = f"routeplane-sdk/{SDK_VERSION}"


def _new_client_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


# One id per process: the clients view shows which processes poll and which revision each runs.
CLIENT_ID = _new_client_id()


def _after_fork_in_child() -> None:
    # A forked child is another process: it must not report under its parent's id.
    global CLIENT_ID
    CLIENT_ID = _new_client_id()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass(frozen=True)
class Remote:
    url: str  # base URL, no /api/v1
    api_key: str

    @property
    def api_base(self) -> str:
        return self.url.rstrip("/") + "/api/v1"

    @property
    def identity(self) -> str:
        """A hash of url + key: names per-router files (flags cache, spool) without the key."""
        digest = hashlib.sha256(f"{self.url.rstrip('/')}\n{self.api_key}".encode())
        return digest.hexdigest()[:32]

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": USER_AGENT,
            "X-Routeplane-Client": CLIENT_ID,
            "Accept": "application/json",
        }
        if extra:
            headers.update(extra)
        return headers


def resolve_remote(url: str | None = None, api_key: str | None = None) -> Remote | None:
    url = url or os.environ.get("ROUTEPLANE_URL") or None
    api_key = api_key or os.environ.get("ROUTEPLANE_API_KEY") or None
    if not url or not api_key:
        return None
    return Remote(url=url, api_key=api_key)


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body) if self.body else None


def request(
    remote: Remote,
    method: str,
    path: str,
    *,
    body: object | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    connection: http.client.HTTPConnection | None = None,
) -> HttpResult:
    """One HTTP request to the control plane; raises OSError/HTTPException on network failure."""
    target = urlsplit(remote.api_base + path)
    conn = connection or open_connection(remote, timeout)
    payload = None
    all_headers = remote.headers(headers)
    if body is not None:
        payload = orjson.dumps(body)
        all_headers["Content-Type"] = "application/json"
    try:
        path_qs = target.path + (f"?{target.query}" if target.query else "")
        conn.request(method, path_qs, body=payload, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        return HttpResult(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        if connection is None:
            conn.close()


def open_connection(remote: Remote, timeout: float = 5.0) -> http.client.HTTPConnection:
    """A connection to the control plane (HTTPS when its URL says so); not yet connected."""
    target = urlsplit(remote.api_base)
    if target.scheme == "https":
        return http.client.HTTPSConnection(target.netloc, timeout=timeout)
    return http.client.HTTPConnection(target.netloc, timeout=timeout)
