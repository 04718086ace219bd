"""The SDK's flags poller: one daemon thread per (control plane, key) in a process.

It long-polls `GET /api/v1/flags?wait=30` with the ETag it holds, keeps the newest document in
memory (a plain reference swap, so readers never lock), and saves each new one to disk as the
last-known-good copy for the next start. Whatever happens on the network, readers get a
document: the server's, else the disk cache, else a bootstrap file, else the safe default
(routing off). A document is validated whole before it is used, wherever it comes from.
Problems are logged once per kind of problem, not once per attempt. After `os.fork()` a child
restarts its own poller on its next read.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from routing.evaluation import document_errors, safe_default_document
from routing.remote import HttpResult, Remote, open_connection, request

log = logging.getLogger("routing.client")

LONG_POLL_SECONDS = 30
FIRST_DOCUMENT_TIMEOUT = 2.0  # FeatureFlags() waits at most this long (README: the router SDK)
BACKOFF_START = 0.05
BACKOFF_CAP = 1.0  # while the control plane is down, retry at least every second


def default_cache_path(remote: Remote) -> Path:
    """Where the last-known-good document lives: ROUTEPLANE_CACHE_PATH, else ~/.cache/routeplane.

    ROUTEPLANE_CACHE_PATH may name a file or a directory (ending in "/" or existing); in a
    directory the file is named by a hash of url+key, so two routers never share a cache.
    """
    name = f"{remote.identity}.json"
    configured = os.environ.get("ROUTEPLANE_CACHE_PATH")
    if configured:
        path = Path(configured).expanduser()
        if configured.endswith(("/", os.sep)) or path.is_dir():
            return path / name
        return path
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "routeplane" / name


class InvalidDocument(ValueError):
    """A flags answer that is not a valid flags document; it is rejected whole."""


def is_document(value: object) -> bool:
    """Whether the server (or a file) gave us a document that is safe to decide on."""
    return not document_errors(value)


def read_document_file(path: Path, *, identity: str | None = None) -> dict[str, Any] | None:
    """A cached or bootstrap document, or None if missing, unreadable, invalid or someone else's."""
    return _read_document_file(path, identity)[0]


def _read_document_file(path: Path, identity: str | None) -> tuple[dict[str, Any] | None, str]:
    """The document, or None and why (an empty reason: missing or someone else's, not a fault)."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"unreadable ({exc})"
    except orjson.JSONDecodeError:
        return None, "not JSON"
    if isinstance(data, dict) and "document" in data:
        if identity is not None and data.get("identity") not in (None, identity):
            return None, ""
        data = data["document"]
    errors = document_errors(data)
    if errors:
        return None, "invalid: " + "; ".join(errors[:3])
    return data, ""


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
        self.identity = remote.identity
        self.cache_path = Path(cache_path) if cache_path else default_cache_path(remote)
        bootstrap = bootstrap_path or os.environ.get("ROUTEPLANE_BOOTSTRAP_PATH")
        self.bootstrap_path = Path(bootstrap) if bootstrap else None
        self.wait_seconds = wait_seconds
        self.request_timeout = request_timeout
        self._document: dict[str, Any] = safe_default_document()
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
        # Serialises applying documents: the poller thread and a caller's fetch_once/apply may
        # both answer, and the older of two answers must not win by arriving last. Reentrant,
        # as listeners run under it and may apply a document themselves.
        self._apply_lock = threading.RLock()
        self._problem: str | None = None
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None  # the poller thread's own
        self._fallback_loaded = False
        self._restart_after_fork = False
        _all_pollers.add(self)

    @property
    def document(self) -> dict[str, Any]:
        """The newest valid document (a plain read; a forked child restarts polling here)."""
        if self._restart_after_fork:
            # first_timeout=0: a read must never wait; the parent's document serves meanwhile.
            self.start(first_timeout=0)
        return self._document

    # --- lifecycle ---------------------------------------------------------------------

    def start(self, *, first_timeout: float = FIRST_DOCUMENT_TIMEOUT) -> FlagsPoller:
        """Start polling; wait up to `first_timeout` for the server, else use cache/bootstrap."""
        with self._lock:
            if self._thread is None:
                self._restart_after_fork = False
                if not self._fallback_loaded:  # a forked child keeps its parent's document
                    self._fallback_loaded = True
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

    def _after_fork_in_child(self) -> None:
        """In a forked child: the poller thread did not survive the fork and the connection's
        socket is shared with the parent. Forget both, never closing or shutting down the socket
        (that would cut the parent's long-poll), and restart on the child's next read. Locks
        and events are replaced because another parent thread may have held them mid-fork."""
        self._lock = threading.Lock()
        self._apply_lock = threading.RLock()
        for name in ("_first_answer", "_synced", "_stop"):
            event = threading.Event()
            if getattr(self, name).is_set():
                event.set()
            setattr(self, name, event)
        self._conn = None
        if self._thread is not None:
            self._thread = None
            self._restart_after_fork = not self._stop.is_set()

    def wait_synced(self, timeout: float) -> bool:
        """True once the server has answered at least once (tests and scripts use this)."""
        return self._synced.wait(timeout)

    def add_listener(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(callback)

    # --- applying documents ------------------------------------------------------------

    def _load_fallback(self) -> None:
        cached, problem = _read_document_file(self.cache_path, self.identity)
        if cached is not None:
            self._set(cached, self._cached_etag(), "cache")
            return
        if problem:
            log.warning("routeplane: flags cache %s is %s; not used", self.cache_path, problem)
        if self.bootstrap_path is not None:
            boot, problem = _read_document_file(self.bootstrap_path, None)
            if boot is not None:
                self._set(boot, None, "bootstrap")
                return
            log.warning(
                "routeplane: bootstrap file %s is %s; not used",
                self.bootstrap_path,
                problem or "missing",
            )

    def _cached_etag(self) -> str | None:
        try:
            etag = orjson.loads(self.cache_path.read_bytes()).get("etag")
        except (OSError, orjson.JSONDecodeError, AttributeError):
            return None
        return etag if isinstance(etag, str) else None

    def _set(self, document: dict[str, Any], etag: str | None, source: str) -> None:
        self._document = document
        self.etag = etag
        self.source = source
        for callback in list(self._listeners):
            try:
                callback(document)
            except Exception:  # a listener's bug must not stop polling
                log.exception("routeplane: flags listener failed")

    def apply(self, document: dict[str, Any], etag: str | None = None) -> None:
        """Use a document obtained elsewhere (a write's answer) unless ours is already newer."""
        if is_document(document):
            self._accept(document, etag)

    def _accept(self, document: dict[str, Any], etag: str | None) -> bool:
        """Use a valid server document unless the server already gave us a newer revision.

        Replicas may lag each other by up to a second, so a poll can reach one that is a
        revision behind: going back would flap. Only documents from the server this process
        has seen count; a cache or bootstrap file never blocks the server's (older) revision.
        """
        with self._apply_lock:
            current = self._document
            if (
                self.source == "server"
                and document.get("router") == current.get("router")
                and document["revision"] < current["revision"]
            ):
                return False
            self._set(document, etag, "server")
            if etag is not None:
                self._save(document, etag)
        return True

    def _save(self, document: dict[str, Any], etag: str | None) -> None:
        try:
            write_document_file(self.cache_path, document, etag, self.identity)
        except OSError as exc:
            self._report("cache", f"cannot write the flags cache {self.cache_path}: {exc}")

    # --- polling -----------------------------------------------------------------------

    def fetch_once(self, *, wait: int = 0) -> int:
        """One GET flags from the caller's thread; applies a newer document. Returns the HTTP
        status (raises on I/O or an invalid document).

        It uses a connection of its own: the poller thread may be mid-long-poll on its
        connection, and an HTTPConnection carries one request at a time.
        """
        headers, path, timeout = self._request_parts(wait)
        result = request(self.remote, "GET", path, headers=headers, timeout=timeout)
        self._handle(result)
        return result.status

    def _request_parts(self, wait: int) -> tuple[dict[str, str], str, float]:
        etag = self.etag
        headers = {"If-None-Match": etag} if etag else {}
        long_poll = bool(wait and etag)  # the server holds only a request with a current ETag
        path = f"/flags?wait={wait}" if long_poll else "/flags"
        return headers, path, self.request_timeout + (wait if long_poll else 0)

    def _poll(self, wait: int) -> str:
        """One GET flags on the poller thread's keep-alive connection; returns the outcome."""
        headers, path, timeout = self._request_parts(wait)
        if self._conn is None:
            self._conn = open_connection(self.remote, timeout)
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
        return self._handle(result)

    def _handle(self, result: HttpResult) -> str:
        """Apply an answer: "applied", "not-modified", "older" (ignored), "no-etag" (applied,
        nothing to long-poll on) or "http-<status>". Raises InvalidDocument for a bad 200."""
        if result.status == 200:
            try:
                document = orjson.loads(result.body)
            except orjson.JSONDecodeError:
                raise InvalidDocument("not JSON") from None
            errors = document_errors(document)
            if errors:
                raise InvalidDocument("; ".join(errors[:3]))
            etag = result.headers.get("etag")
            if not self._accept(document, etag):
                return "older"
            if etag is None:
                self._report(
                    "no-etag",
                    "the control plane answered 200 without an ETag, so there is nothing to "
                    "long-poll on; polling at most once a second",
                )
                return "no-etag"
            return "applied"
        if result.status == 304:
            self.source = "server"
            return "not-modified"
        self._http_problem(result.status, result.body)
        return f"http-{result.status}"

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _run(self) -> None:
        delay = BACKOFF_START
        # The first request after a (re)start or a failure must not long-poll: holding an ETag
        # from the disk cache, it would be held by the server and FeatureFlags() would wait out
        # its 2 s on the cache. Without `wait` a 304 confirms the cache at once.
        wait = 0
        while not self._stop.is_set():
            try:
                outcome = self._poll(wait)
            except InvalidDocument as exc:
                outcome = "invalid"
                self._report("invalid", f"the control plane sent an invalid flags document: {exc}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if self._stop.is_set():  # stop() cut the request: not a control plane problem
                    break
                outcome = "unreachable"
                self._report("network", f"control plane unreachable ({exc.__class__.__name__})")
            if outcome in ("applied", "not-modified", "older", "no-etag"):
                self.failures = 0
                self.last_success = time.monotonic()
                self._synced.set()
                self._first_answer.set()
                wait = self.wait_seconds
                if outcome in ("applied", "not-modified"):
                    if self._problem is not None:
                        log.warning(
                            "routeplane: control plane reachable again (%s)", self.remote.url
                        )
                        self._problem = None
                    delay = BACKOFF_START
                    continue
                # "older" (a lagging replica) and "no-etag" are answered again at once, so back
                # off as below instead of spinning.
            else:
                self.failures += 1
                wait = 0
                # Anything but a document: the first answer is "not coming", so FeatureFlags()
                # goes on at once with the cache instead of waiting out its 2 seconds.
                self._first_answer.set()
            sleep = delay * random.uniform(0.5, 1.0)
            if outcome == "http-429":
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


_pollers: dict[tuple[str, str, str | None], FlagsPoller] = {}
_pollers_lock = threading.Lock()
_all_pollers: weakref.WeakSet[FlagsPoller] = weakref.WeakSet()  # shared or not, for fork


def _after_fork_in_child() -> None:
    global _pollers_lock
    _pollers_lock = threading.Lock()  # a parent thread may have held it mid-fork
    for poller in list(_all_pollers):
        poller._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # POSIX; gunicorn --preload, multiprocessing "fork"
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
