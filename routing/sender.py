"""The tracker's delivery to the control plane: a bounded queue, one sender thread, a spool.

Items of two kinds go out in the order they were put: events (`POST events`) and outcomes
(`POST events/outcomes`). A batch is the run of same-kind items at the head of the queue (at
most 1000), so an outcome is always posted after its event. The sender posts at least every
`flush_interval`, retries with backoff, and spills batches it cannot send (or that do not fit
in the queue, or that are still queued at exit) to the spool, replayed once the control plane
answers again. Both kinds are idempotent on the server, so a replayed batch counts once.

The spool is one directory per control plane URL + API key (named by a hash, like the flags
cache): a replay only ever sends this key's own items. A 401/403 keeps the batch (the key may
be fixed or re-enabled); the problem is logged once. Only what cannot be kept (spool full, an
item the server refuses as invalid) is counted in `dropped`.

An outcome refused because the server does not know its event yet (the event may still be in
the spool, or in another worker's batch) is retried with backoff for `outcome_retry_seconds`.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import http.client
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from routing.remote import Remote, open_connection, request

log = logging.getLogger("routing.tracker")

MAX_BATCH = 1000
EVENTS, OUTCOMES = "events", "outcomes"
PATHS = {EVENTS: "/events", OUTCOMES: "/events/outcomes"}
REPLAY_EVERY = 5.0
OUTCOME_RETRY_SECONDS = 600.0
# Results of one POST.
SENT, REFUSED, RETRY, UNAUTHORIZED = "sent", "refused", "retry", "unauthorized"


def default_spool_root() -> Path:
    """ROUTEPLANE_SPOOL_DIR, else <ROUTEPLANE_CACHE_DIR or ~/.cache/routeplane>/spool."""
    explicit = os.environ.get("ROUTEPLANE_SPOOL_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("ROUTEPLANE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "routeplane"
    )
    return Path(cache) / "spool"


def is_unknown_event(errors: Any) -> bool:
    """Whether an outcome was refused only because its event is not (yet) stored."""
    if not isinstance(errors, dict) or set(errors) != {"event_id"}:
        return False
    messages = " ".join(map(str, errors.get("event_id") or [])).lower()
    return any(word in messages for word in ("unknown", "not found", "no such", "does not exist"))


QueueEntry = tuple[str, dict[str, Any], float | None]
# Turns queued events into what is posted or spooled, leaving out those it refuses. It runs on
# the sender thread (or where a batch is spooled), so the caller's `put` stays cheap.
PrepareEvents = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


@dataclass
class Counts:
    sent: int = 0  # acknowledged by the server (accepted or duplicate)
    dropped: int = 0  # lost for good (spool full, refused by the server)
    spilled: int = 0  # written to the spool


@dataclass(order=True)
class PendingOutcome:
    due: float
    first_refused: float = field(compare=False)
    item: dict[str, Any] = field(compare=False)


class Sender:
    def __init__(
        self,
        remote: Remote,
        *,
        spool_root: Path,
        max_queue: int,
        batch_size: int,
        flush_interval: float,
        spool_max_bytes: int,
        max_send_attempts: int,
        outcome_retry_seconds: float = OUTCOME_RETRY_SECONDS,
        prepare_events: PrepareEvents | None = None,
    ) -> None:
        self.remote = remote
        self.prepare_events = prepare_events
        self.spool_dir = spool_root / remote.identity
        self.max_queue = max(1, max_queue)
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.flush_interval = min(max(0.01, flush_interval), 1.0)
        self.spool_max_bytes = spool_max_bytes
        self.max_send_attempts = max(1, max_send_attempts)
        self.outcome_retry_seconds = outcome_retry_seconds
        self.counts = {EVENTS: Counts(), OUTCOMES: Counts()}
        # (kind, item, when the server first refused it for an unknown event, or None)
        self._queue: collections.deque[QueueEntry] = collections.deque()
        self._pending: list[PendingOutcome] = []  # outcomes waiting for their event
        self._cond = threading.Condition()
        # The caller's thread (queue overflow) and the sender thread both spill: the size check
        # and the write must be one step, or both pass the check and overfill the spool.
        self._spool_lock = threading.Lock()
        self._in_flight = 0
        self._flush_requested = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._problem: str | None = None

    # --- putting -------------------------------------------------------------------------

    def put(self, kind: str, item: dict[str, Any]) -> None:
        overflow: list[QueueEntry] = []
        with self._cond:
            if len(self._queue) >= self.max_queue:
                # Full (control plane slow or down): move the oldest batch to disk, keep going.
                for _ in range(min(self.batch_size, len(self._queue))):
                    overflow.append(self._queue.popleft())
            self._queue.append((kind, item, None))
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()
            self._ensure_thread()
        self._spill_items(overflow)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def waiting_outcomes(self) -> int:
        """Outcomes refused for an unknown event, waiting to be posted again."""
        return len(self._pending)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._closing = False
            self._thread = threading.Thread(
                target=self._run, name="routeplane-tracker", daemon=True
            )
            self._thread.start()

    # --- flushing ------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued; True when the queue drained (sent or spooled) in time.

        Outcomes waiting for their event are not waited for (they may wait minutes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if not self._queue and not self._in_flight:
                return True
            self._ensure_thread()
            self._flush_requested = True
            self._cond.notify_all()
            while self._queue or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 0.5)
            return True

    def close(self, timeout: float = 2.0) -> None:
        """Flush for at most `timeout` s, then spool whatever is left (also run at exit)."""
        self.flush(timeout)
        with self._cond:
            self._closing = True
            left = list(self._queue)
            self._queue.clear()
            left += [(OUTCOMES, p.item, None) for p in sorted(self._pending)]
            self._pending.clear()
            self._cond.notify_all()
        self._spill_items(left)
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._close_conn()

    # --- the sender thread ---------------------------------------------------------------

    def _run(self) -> None:
        self.replay_spool()
        last_replay = time.monotonic()
        while True:
            with self._cond:
                deadline = time.monotonic() + self.flush_interval
                while (
                    not self._closing
                    and not self._flush_requested
                    and len(self._queue) < self.batch_size
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._closing:
                    return
                self._requeue_due_outcomes()
                kind, batch, first_refused = self._take_batch()
                self._in_flight = len(batch)
                if not self._queue:
                    self._flush_requested = False
            try:
                if batch and kind == EVENTS and self.prepare_events is not None:
                    batch = self.prepare_events(batch)
                    first_refused = [None] * len(batch)  # events are never refused for that
                if batch:
                    self._deliver(kind, batch, first_refused)
            except Exception as exc:  # e.g. a value JSON cannot hold: never let the thread die
                self.counts[kind].dropped += len(batch)
                self._log_once(f"failed-{kind}", "dropped %d %s: %r", len(batch), kind, exc)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()
            if time.monotonic() - last_replay > REPLAY_EVERY:
                self.replay_spool()
                last_replay = time.monotonic()

    def _take_batch(self) -> tuple[str, list[dict[str, Any]], list[float | None]]:
        """The run of same-kind items at the head of the queue (caller holds the lock)."""
        if not self._queue:
            return EVENTS, [], []
        kind = self._queue[0][0]
        batch, first_refused = [], []
        while self._queue and self._queue[0][0] == kind and len(batch) < self.batch_size:
            _, item, first = self._queue.popleft()
            batch.append(item)
            first_refused.append(first)
        return kind, batch, first_refused

    def _requeue_due_outcomes(self) -> None:
        now = time.monotonic()
        while self._pending and self._pending[0].due <= now:
            pending = heapq.heappop(self._pending)
            self._queue.append((OUTCOMES, pending.item, pending.first_refused))

    def _deliver(
        self, kind: str, batch: list[dict[str, Any]], first_refused: list[float | None]
    ) -> None:
        delay = 0.1
        for attempt in range(self.max_send_attempts):
            result = self._post(kind, batch, first_refused)
            if result in (SENT, REFUSED):
                return
            if result == UNAUTHORIZED:
                break  # asking again with the same key cannot help: keep the batch on disk
            if attempt + 1 < self.max_send_attempts and not self._closing:
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
        self._spill(kind, batch)

    def _post(
        self, kind: str, batch: list[dict[str, Any]], first_refused: list[float | None]
    ) -> str:
        """POST one batch; SENT, REFUSED (dropped), RETRY (transient) or UNAUTHORIZED."""
        try:
            if self._conn is None:
                self._conn = open_connection(self.remote)
            result = request(
                self.remote, "POST", PATHS[kind], body={kind: batch}, connection=self._conn
            )
        except (OSError, http.client.HTTPException) as exc:
            log.debug("%s post failed: %s", kind, exc)
            self._close_conn()
            return RETRY
        counts = self.counts[kind]
        if result.status == 200:
            body = result.json()
            rejected = (body.get("rejected") or []) if isinstance(body, dict) else []
            counts.sent += len(batch) - len(rejected)
            for entry in rejected:
                index = entry.get("index") if isinstance(entry, dict) else None
                errors = entry.get("errors") if isinstance(entry, dict) else None
                in_batch = isinstance(index, int) and 0 <= index < len(batch)
                if kind == OUTCOMES and in_batch and is_unknown_event(errors):
                    self._retry_later(batch[index], first_refused[index])
                    continue
                counts.dropped += 1
                self._log_once(
                    f"rejected-{kind}", "control plane rejected %s: %s", kind, rejected[:3]
                )
            self._recovered()
            return SENT
        if result.status in (408, 429) or result.status >= 500:
            self._close_conn()
            return RETRY
        if result.status in (401, 403):
            self._log_once(
                f"auth-{result.status}",
                "the control plane refused this API key (HTTP %s); %s stay in the spool %s",
                result.status,
                kind,
                self.spool_dir,
                level=logging.ERROR,
            )
            return UNAUTHORIZED
        # 400/413: sending it again cannot help.
        counts.dropped += len(batch)
        log.error("control plane refused %d %s (HTTP %s)", len(batch), kind, result.status)
        return REFUSED

    def _retry_later(self, item: dict[str, Any], first_refused: float | None) -> None:
        now = time.monotonic()
        first = first_refused if first_refused is not None else now
        waited = now - first
        if waited > self.outcome_retry_seconds:
            self.counts[OUTCOMES].dropped += 1
            self._log_once(
                "outcome-unknown-event",
                "outcome dropped: its event %s is still unknown to the control plane after %d s",
                item.get("event_id"),
                int(waited),
            )
            return
        delay = min(30.0, max(0.5, waited)) * (0.5 + random.random())
        with self._cond:
            heapq.heappush(self._pending, PendingOutcome(now + delay, first, item))

    def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _log_once(self, kind: str, message: str, *args: Any, level: int = logging.WARNING) -> None:
        if self._problem != kind:
            self._problem = kind
            log.log(level, "routeplane: " + message, *args)

    def _recovered(self) -> None:
        self._problem = None

    # --- spool ---------------------------------------------------------------------------

    def _spool_size(self) -> int:
        try:
            return sum(p.stat().st_size for p in self.spool_dir.glob("batch-*.json*"))
        except OSError:
            return 0

    def _spill_items(self, entries: list[QueueEntry]) -> None:
        """Spill queue entries in order, one file per run of the same kind."""
        start = 0
        for end in range(1, len(entries) + 1):
            if end == len(entries) or entries[end][0] != entries[start][0]:
                kind, items = entries[start][0], [item for _, item, _ in entries[start:end]]
                if kind == EVENTS and self.prepare_events is not None:
                    items = self.prepare_events(items)
                if items:
                    self._spill(kind, items)
                start = end

    def _spill(self, kind: str, items: list[dict[str, Any]]) -> None:
        data = orjson.dumps({"kind": kind, "items": items})
        counts = self.counts[kind]
        with self._spool_lock:
            try:
                self.spool_dir.mkdir(parents=True, exist_ok=True)
                if self._spool_size() + len(data) > self.spool_max_bytes:
                    raise OSError("spool full")
                name = f"batch-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
                tmp = self.spool_dir / f".{name}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, self.spool_dir / name)  # readers never see half a file
                counts.spilled += len(items)
            except OSError as exc:
                counts.dropped += len(items)
                log.error("dropped %d %s: cannot spool them (%s)", len(items), kind, exc)

    def spool_files(self) -> list[Path]:
        try:
            return sorted(self.spool_dir.glob("batch-*.json"))
        except OSError:
            return []

    def replay_spool(self) -> int:
        """Send spooled batches (oldest first); stop at the first that cannot be delivered
        (control plane down, or the key refused: the file stays). Returns items sent."""
        sent = 0
        self._reclaim_stale_claims()
        for path in self.spool_files():
            if self._closing:
                break
            claimed = path.with_name(path.name + f".sending-{os.getpid()}")
            try:
                os.replace(path, claimed)  # claim it, so two processes do not both send it
                data = orjson.loads(claimed.read_bytes())
                kind, items = data["kind"], data["items"]
                if kind not in PATHS or not isinstance(items, list):
                    raise ValueError(kind)
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            result = self._post(kind, items, [None] * len(items)) if items else SENT
            if result in (RETRY, UNAUTHORIZED):
                os.replace(claimed, path)
                break
            claimed.unlink(missing_ok=True)
            sent += len(items) if result == SENT else 0
        return sent

    def _reclaim_stale_claims(self, older_than: float = 60.0) -> None:
        """A process killed while sending leaves a claimed file: put it back in the queue."""
        try:
            for path in self.spool_dir.glob("batch-*.json.sending-*"):
                if time.time() - path.stat().st_mtime > older_than:
                    os.replace(path, path.with_name(path.name.split(".sending-")[0]))
        except OSError:
            pass
