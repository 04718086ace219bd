"""The SDK's flags poller: one daemon thread per (control plane, key) in a process.

It long-polls `GET /api/v1/flags?wait=30` with the ETag it holds, keeps the newest document in
memory (a plain reference swap, so readers never lock), and saves each new one to disk as the
last-known-good copy for the next start. Whatever happens on the network, readers get a
document: the server's, else the disk cache, else a bootstrap file, else the safe default
(routing off). Problems are logged once per kind of problem, not once per attempt.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from routing.evaluation import safe_default_document
from routing.remote import Remote, request

log = logging.getLogger("routing.client")

LONG_POLL_SECONDS = 30
FIRST_DOCUMENT_TIMEOUT = 2.0  # CONTRACT §1: FeatureFlags() waits at most this long
BACKOFF_START = 0.05
BACKOFF_CAP = 1.0  # CONTRACT §1: while the control plane is down, retry at least every second


def default_cache_path(remote: Remote) -> Path:
    """Where the last-known-good document lives: ROUTEPLANE_CACHE_PATH, else ~/.cache/routeplane.

    ROUTEPLANE_CACHE_PATH may name a file or a directory (ending in "/" or existing); in a
    directory the file is named by a hash of url+key, so two routers never share a cache.
    """
    name = f"{_identity(remote)}.json"
    configured = os.environ.get("ROUTEPLANE_CACHE_PATH")
    if configured:
        path = Path(configured).expanduser()
        if configured.endswith(("/", os.sep)) or path.is_dir():
            return path / name
        return path
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "routeplane" / name


def _identity(remote: Remote) -> str:
    return hashlib.sha256(f"{remote.url.rstrip('/')}\n{remote.api_key}".encode()).hexdigest()[:32]


def is_document(value: object) -> bool:
    """A sanity check on what the server (or a file) gave us, before trusting it."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("flags"), dict)
        and isinstance(value.get("config"), dict)
        and isinstance(value.get("revision"), int)
    )


def read_document_file(path: Path, *, identity: str | None = None) -> dict[str, Any] | None:
    """A cached or bootstrap document, or None if missing, unreadable or someone else's."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if isinstance(data, dict) and "document" in data:
        if identity is not None and data.get("identity") not in (None, identity):
            return None
        data = data["document"]
    return data if is_document(data) else None


def write_document_file(path: Path, document: Mapping[str, Any], etag: str | None, identity: str):
    """Atomic: a crash mid-write leaves the previous cache, never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = orjson.dumps(
        {"identity": identity, "etag": etag, "saved_at": time.time(), "document": document}
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".routeplane-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class FlagsPoller:
    """Keeps the newest flags document of one router; safe to read from any thread."""

    def __init__(
        self,
        remote: Remote,
        *,
        cache_path: str | os.PathLike[str] | None = None,
        bootstrap_path: str | os.PathLike[str] | None = None,
        wait_seconds: int = LONG_POLL_SECONDS,
        request_timeout: float = 5.0,
    ) -> None:
        self.remote = remote
        self.identity = _identity(remote)
        self.cache_path = Path(cache_path) if cache_path else default_cache_path(remote)
        bootstrap = bootstrap_path or os.environ.get("ROUTEPLANE_BOOTSTRAP_PATH")
        self.bootstrap_path = Path(bootstrap) if bootstrap else None
        self.wait_seconds = wait_seconds
        self.request_timeout = request_timeout
        self.document: dict[str, Any] = safe_default_document()
        self.etag: str | None = None
        # Where the current document came from: server, cache, bootstrap or default.
        self.source = "default"
        self.last_success: float | None = None
        self.failures = 0
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._first_answer = threading.Event()
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self, *, first_timeout: float = FIRST_DOCUMENT_TIMEOUT) -> FlagsPoller:
        """Start polling; wait up to `first_timeout` for the server, else use cache/bootstrap."""
        with self._lock:
            if self._thread is None:
                self._load_fallback()
                self._thread = threading.Thread(
                    target=self._run, name=f"routeplane-flags-{self.identity[:8]}", daemon=True
                )
                self._thread.start()
        self._first_answer.wait(first_timeout)
        return self

    def stop(self) -> None:
        self._stop.set()
        conn = self._conn
        if conn is not None:
            try:  # unblocks a long-poll in progress
                if conn.sock is not None:
                    conn.sock.shutdown(2)
            except OSError:
                pass

    def wait_synced(self, timeout: float) -> bool:
        """True once the server has answered at least once (tests and scripts use this)."""
        return self._synced.wait(timeout)

    def add_listener(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(callback)

    # --- applying documents ------------------------------------------------------------

    def _load_fallback(self) -> None:
        cached = read_document_file(self.cache_path, identity=self.identity)
        if cached is not None:
            self._set(cached, self._cached_etag(), "cache")
            return
        if self.bootstrap_path is not None:
            boot = read_document_file(self.bootstrap_path)
            if boot is not None:
                self._set(boot, None, "bootstrap")
                return
            log.warning("routeplane: bootstrap file %s is missing or invalid", self.bootstrap_path)

    def _cached_etag(self) -> str | None:
        try:
            etag = orjson.loads(self.cache_path.read_bytes()).get("etag")
        except (OSError, orjson.JSONDecodeError, AttributeError):
            return None
        return etag if isinstance(etag, str) else None

    def _set(self, document: dict[str, Any], etag: str | None, source: str) -> None:
        self.document = document
        self.etag = etag
        self.source = source
        for callback in list(self._listeners):
            try:
                callback(document)
            except Exception:  # a listener's bug must not stop polling
                log.exception("routeplane: flags listener failed")

    def apply(self, document: dict[str, Any], etag: str | None = None) -> None:
        """Use a document obtained elsewhere (a write's answer) unless ours is already newer."""
        if not is_document(document):
            return
        if document["revision"] < int(self.document.get("revision") or 0):
            return
        self._set(document, etag, "server")
        if etag is not None:
            self._save(document, etag)

    def _save(self, document: dict[str, Any], etag: str | None) -> None:
        try:
            write_document_file(self.cache_path, document, etag, self.identity)
        except OSError as exc:
            self._report("cache", f"cannot write the flags cache {self.cache_path}: {exc}")

    # --- polling -----------------------------------------------------------------------

    def fetch_once(self, *, wait: int = 0) -> int:
        """One GET flags; applies a new document. Returns the HTTP status (raises on I/O)."""
        headers = {"If-None-Match": self.etag} if self.etag else {}
        path = f"/flags?wait={wait}" if wait and self.etag else "/flags"
        timeout = self.request_timeout + (wait if self.etag else 0)
        if self._conn is None:
            self._conn = _connection(self.remote, timeout)
        self._conn.timeout = timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        try:
            result = request(self.remote, "GET", path, headers=headers, connection=self._conn)
        except BaseException:
            self._drop_connection()
            raise
        if result.headers.get("connection", "").lower() == "close":
            self._drop_connection()
        if result.status == 200:
            document = orjson.loads(result.body)
            if not is_document(document):
                raise ValueError("the flags answer is not a flags document")
            etag = result.headers.get("etag")
            self._set(document, etag, "server")
            self._save(document, etag)
        elif result.status == 304:
            self.source = "server"
        else:
            self._http_problem(result.status, result.body)
        return result.status

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _run(self) -> None:
        delay = BACKOFF_START
        while not self._stop.is_set():
            try:
                status = self.fetch_once(wait=self.wait_seconds)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                status = None
                self._report("network", f"control plane unreachable ({exc.__class__.__name__})")
            if status in (200, 304):
                if self._problem is not None:
                    log.warning("routeplane: control plane reachable again (%s)", self.remote.url)
                    self._problem = None
                self.failures = 0
                self.last_success = time.monotonic()
                delay = BACKOFF_START
                self._synced.set()
                self._first_answer.set()
                continue
            self.failures += 1
            # Anything but a document: the first answer is "not coming", so FeatureFlags()
            # goes on at once with the cache instead of waiting out its 2 seconds.
            self._first_answer.set()
            sleep = delay * random.uniform(0.5, 1.0)
            if status == 429:
                sleep = BACKOFF_CAP
            self._stop.wait(sleep)
            delay = min(BACKOFF_CAP, delay * 2)
        self._drop_connection()

    def _http_problem(self, status: int, body: bytes) -> None:
        if status in (401, 403):
            self._report(
                f"auth-{status}",
                f"the control plane refused this API key (HTTP {status}); routing keeps the "
                f"last known flags until the key is fixed: {body[:200]!r}",
                level=logging.ERROR,
            )
        elif status >= 500:
            self._report("5xx", f"the control plane answered HTTP {status}")
        elif status != 429:
            self._report(f"http-{status}", f"unexpected answer HTTP {status}: {body[:200]!r}")

    def _report(self, kind: str, message: str, *, level: int = logging.WARNING) -> None:
        if self._problem != kind:
            self._problem = kind
            log.log(
                level, "routeplane: %s (%s); using %s flags", message, self.remote.url, self.source
            )


def _connection(remote: Remote, timeout: float) -> http.client.HTTPConnection:
    from urllib.parse import urlsplit

    target = urlsplit(remote.api_base)
    if target.scheme == "https":
        return http.client.HTTPSConnection(target.netloc, timeout=timeout)
    return http.client.HTTPConnection(target.netloc, timeout=timeout)


_pollers: dict[tuple[str, str, str | None], FlagsPoller] = {}
_pollers_lock = threading.Lock()


def shared_poller(
    remote: Remote,
    *,
    cache_path: str | os.PathLike[str] | None = None,
    bootstrap_path: str | os.PathLike[str] | None = None,
    first_timeout: float = FIRST_DOCUMENT_TIMEOUT,
) -> FlagsPoller:
    """One poller per control plane and key per process: FeatureFlags, DomainRouter and the
    OpenFeature provider share it, so a process holds one long-poll, not one per object."""
    key = (remote.url.rstrip("/"), remote.api_key, str(cache_path) if cache_path else None)
    with _pollers_lock:
        poller = _pollers.get(key)
        if poller is None or poller._stop.is_set():
            poller = FlagsPoller(remote, cache_path=cache_path, bootstrap_path=bootstrap_path)
            _pollers[key] = poller
    return poller.start(first_timeout=first_timeout)


def stop_all_pollers() -> None:
    """Stop every shared poller (tests, and processes that fork)."""
    with _pollers_lock:
        pollers = list(_pollers.values())
        _pollers.clear()
    for poller in pollers:
        poller.stop()
