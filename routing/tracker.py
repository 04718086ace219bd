"""CostTracker: record routing decisions; report cost savings. Plain Python, no Django.

Local mode (no control plane configured): events stay in memory and reports are computed from
them, as in the migration guide. Remote mode (ROUTEPLANE_URL + ROUTEPLANE_API_KEY, or the `url` /
`api_key` arguments): `track_routing_decision` only appends to a bounded in-memory queue and
returns; a background thread posts batches of up to 1000 events at least every second, retries
with backoff, and spills batches it cannot send (or that do not fit in the queue, or that are
still queued at exit) to a spool directory, replayed once the control plane answers again.
Events are idempotent on the server (event_id), so a replayed or retried batch counts once.
Whatever cannot be kept (spool full, a batch the server refuses) is counted in `dropped`.

The raw prompt text never leaves the process: only its SHA-256 and length are sent.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import hashlib
import http.client
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from routing.events import validate_event
from routing.prices import PriceBook, price_book_from_table, shipped_price_book
from routing.remote import Remote, open_connection, request, resolve_remote
from routing.reports import RoutingMetrics, TrackedEvent, local_report

log = logging.getLogger("routing.tracker")

EVENT_FIELDS = frozenset(
    {
        "model_tier",
        "strong_win_rate",
        "threshold",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "success",
        "fallback_used",
        "error",
        "revision",
        "ab_group",
    }
)
MAX_BATCH = 1000
REPORT_FLUSH_SECONDS = 5.0


# --- The tracker -----------------------------------------------------------------------------


def default_spool_dir() -> Path:
    explicit = os.environ.get("ROUTEPLANE_SPOOL_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("ROUTEPLANE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "routeplane"
    )
    return Path(cache) / "spool"


_live_trackers: weakref.WeakSet[CostTracker] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for tracker in list(_live_trackers):
        with contextlib.suppress(Exception):
            tracker.close(timeout=1.0)


class CostTracker:
    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        strong_model: str = "gpt-4-1106-preview",
        weak_model: str = "gpt-3.5-turbo",
        max_queue: int = 10_000,
        batch_size: int = MAX_BATCH,
        flush_interval: float = 1.0,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = 256 * 1024 * 1024,
        max_send_attempts: int = 3,
        history_limit: int | None = None,
        prices: PriceBook | Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.remote: Remote | None = resolve_remote(url, api_key)
        self.strong_model = strong_model
        self.weak_model = weak_model
        # Local reports price with the control plane's shipped table unless told otherwise
        # ({model: (input, output) USD per 1M tokens}, or a PriceBook).
        if prices is None:
            self.prices = shipped_price_book()
        elif isinstance(prices, PriceBook):
            self.prices = prices
        else:
            self.prices = price_book_from_table(prices)
        self.max_queue = max(1, max_queue)
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.flush_interval = min(max(0.01, flush_interval), 1.0)
        self.spool_dir = Path(spool_dir) if spool_dir else default_spool_dir()
        self.spool_max_bytes = spool_max_bytes
        self.max_send_attempts = max(1, max_send_attempts)
        self.dropped = 0  # events lost for good (invalid, spool full, refused by the server)
        self.sent = 0  # events the server acknowledged (accepted or duplicate)
        self.spilled = 0  # events written to the spool
        # Remote mode keeps a smaller copy: only a fallback when the reports endpoint is down.
        if history_limit is None:
            history_limit = 100_000 if self.remote is None else 10_000
        self.history_limit = max(1, history_limit)
        # Insertion-ordered by event id: outcomes find their event, the oldest go first.
        self._history: dict[str, TrackedEvent] = {}
        self._history_lock = threading.Lock()
        self._problems: set[str] = set()  # kinds of problems already logged (each logged once)
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._cond = threading.Condition()
        # The caller's thread (queue overflow) and the sender thread both spill: the size check
        # and the write must be one step, or both pass the check and overfill the spool.
        self._spool_lock = threading.Lock()
        self._in_flight = 0
        self._flush_requested = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        if self.remote is not None:
            _live_trackers.add(self)

    @property
    def is_remote(self) -> bool:
        return self.remote is not None

    # --- recording -----------------------------------------------------------------------

    def track_routing_decision(
        self,
        text: str,
        domains: list[str] | None,
        routing_method: str,
        selected_model: str,
        estimated_cost: float | None,
        **extra: Any,
    ) -> str:
        """Record one decision; returns its event id at once (never waits on the network).

        The event is validated by the schema the control plane uses (routing.events); an
        invalid one is logged (once per kind of problem), counted in `dropped` and not kept,
        as the server would refuse it.
        """
        now = datetime.now(UTC)
        encoded = (text or "").encode("utf-8", "surrogatepass")
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "timestamp": now.isoformat(),
            "selected_model": selected_model,
            "domains": list(domains or []),
            "routing_method": routing_method,
            "estimated_cost": estimated_cost,
            "text_sha256": hashlib.sha256(encoded).hexdigest(),
            "text_length": len(text or ""),
        }
        for name, value in extra.items():
            if name in EVENT_FIELDS:
                event[name] = value
        if event.get("model_tier") is None:
            event["model_tier"] = (
                "strong"
                if selected_model == self.strong_model
                else "weak"
                if selected_model == self.weak_model
                else "other"
            )
        valid, errors = validate_event(event, now)
        if valid is None:
            self.dropped += 1
            self._log_once(
                "invalid-event:" + ",".join(sorted(errors)),
                "routeplane: event not recorded, invalid %s",
                errors,
            )
            return event["event_id"]
        self._remember(TrackedEvent(valid))
        if self.remote is not None:
            self._enqueue(event)
        return event["event_id"]

    def _remember(self, tracked: TrackedEvent) -> None:
        with self._history_lock:
            self._history[str(tracked.event.event_id)] = tracked
            while len(self._history) > self.history_limit:
                del self._history[next(iter(self._history))]

    def _log_once(self, kind: str, message: str, *args: Any) -> None:
        if kind not in self._problems:
            self._problems.add(kind)
            log.warning(message, *args)

    def _enqueue(self, event: dict[str, Any]) -> None:
        overflow: list[dict[str, Any]] = []
        with self._cond:
            if len(self._queue) >= self.max_queue:
                # Full (control plane slow or down): move the oldest batch to disk, keep going.
                for _ in range(min(self.batch_size, len(self._queue))):
                    overflow.append(self._queue.popleft())
            self._queue.append(event)
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()
            self._ensure_thread()
        if overflow:
            self._spill(overflow)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._closing = False
            self._thread = threading.Thread(
                target=self._run, name="routeplane-tracker", daemon=True
            )
            self._thread.start()

    # --- flushing ------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued; True when the queue drained (sent or spooled) in time."""
        if self.remote is None:
            return True
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
        if self.remote is None:
            return
        self.flush(timeout)
        with self._cond:
            self._closing = True
            left = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        if left:
            self._spill(left)
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._close_conn()

    @property
    def queued(self) -> int:
        return len(self._queue)

    # --- background sender ---------------------------------------------------------------

    def _run(self) -> None:
        self._replay_spool()
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
                batch = [
                    self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))
                ]
                self._in_flight = len(batch)
                if not self._queue:
                    self._flush_requested = False
            try:
                if batch and not self._send_with_retry(batch):
                    self._spill(batch)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()
            if time.monotonic() - last_replay > 5.0:
                self._replay_spool()
                last_replay = time.monotonic()

    def _send_with_retry(self, batch: list[dict[str, Any]]) -> bool:
        """True when the server took the batch (or refused it for good: counted as dropped)."""
        delay = 0.1
        for attempt in range(self.max_send_attempts):
            outcome = self._send(batch)
            if outcome is not None:
                return True
            if attempt + 1 < self.max_send_attempts and not self._closing:
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
        return False

    def _send(self, batch: list[dict[str, Any]]) -> bool | None:
        """POST one batch: True sent, False refused for good (dropped), None retry later."""
        assert self.remote is not None
        try:
            if self._conn is None:
                self._conn = open_connection(self.remote)
            result = request(
                self.remote, "POST", "/events", body={"events": batch}, connection=self._conn
            )
        except (OSError, http.client.HTTPException) as exc:
            log.debug("event post failed: %s", exc)
            self._close_conn()
            return None
        if result.status == 200:
            body = result.json() or {}
            rejected = body.get("rejected") or [] if isinstance(body, dict) else []
            self.sent += len(batch) - len(rejected)
            if rejected:
                self.dropped += len(rejected)
                log.warning("control plane rejected %d events: %s", len(rejected), rejected[:3])
            return True
        if result.status in (408, 429) or result.status >= 500:
            self._close_conn()
            return None
        # 400/401/403/413: sending it again cannot help.
        self.dropped += len(batch)
        log.error("control plane refused %d events (HTTP %s)", len(batch), result.status)
        return False

    def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # --- spool ---------------------------------------------------------------------------

    def _spool_size(self) -> int:
        try:
            return sum(p.stat().st_size for p in self.spool_dir.glob("events-*.json*"))
        except OSError:
            return 0

    def _spill(self, events: list[dict[str, Any]]) -> None:
        data = orjson.dumps(events)
        with self._spool_lock:
            try:
                self.spool_dir.mkdir(parents=True, exist_ok=True)
                if self._spool_size() + len(data) > self.spool_max_bytes:
                    raise OSError("spool full")
                name = f"events-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
                tmp = self.spool_dir / f".{name}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, self.spool_dir / name)  # readers never see half a file
                self.spilled += len(events)
            except OSError as exc:
                self.dropped += len(events)
                log.error("dropped %d events: cannot spool them (%s)", len(events), exc)

    def _replay_spool(self) -> int:
        """Send spooled batches (oldest first); stop at the first failure. Returns events sent."""
        if self.remote is None:
            return 0
        sent = 0
        self._reclaim_stale_claims()
        try:
            files = sorted(self.spool_dir.glob("events-*.json"))
        except OSError:
            return 0
        for path in files:
            if self._closing:
                break
            claimed = path.with_name(path.name + f".sending-{os.getpid()}")
            try:
                os.replace(path, claimed)  # claim it, so two processes do not both send it
                events = orjson.loads(claimed.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            outcome = self._send(events) if events else True
            if outcome is None:
                os.replace(claimed, path)
                break
            claimed.unlink(missing_ok=True)
            sent += len(events) if outcome else 0
        return sent

    def _reclaim_stale_claims(self, older_than: float = 60.0) -> None:
        """A process killed while sending leaves a claimed file: put it back in the queue."""
        try:
            for path in self.spool_dir.glob("events-*.json.sending-*"):
                if time.time() - path.stat().st_mtime > older_than:
                    os.replace(path, path.with_name(path.name.split(".sending-")[0]))
        except OSError:
            pass

    def replay_spool(self) -> int:
        """Send spooled events now (normally done by the background thread)."""
        return self._replay_spool()

    # --- reports -------------------------------------------------------------------------

    def local_events(self) -> list[TrackedEvent]:
        """The events this process recorded (bounded by `history_limit`), oldest first."""
        with self._history_lock:
            return list(self._history.values())

    def local_report(self, period_days: int = 7) -> dict[str, Any]:
        """The savings report of this process's events, computed here (local mode's report)."""
        return local_report(
            self.local_events(),
            period_days=period_days,
            strong_model=self.strong_model,
            book=self.prices,
        )

    def _remote_get(self, path: str) -> dict[str, Any] | None:
        assert self.remote is not None
        self.flush(REPORT_FLUSH_SECONDS)
        try:
            result = request(self.remote, "GET", path, timeout=REPORT_FLUSH_SECONDS)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("report unavailable (%s); using this process's events", exc)
            return None
        if result.status != 200:
            log.warning("report unavailable (HTTP %s); using this process's events", result.status)
            return None
        data = result.json()
        return data if isinstance(data, dict) else None

    def get_cost_savings_report(self, period_days: int = 7) -> RoutingMetrics:
        data = None
        if self.remote is not None:
            data = self._remote_get(f"/reports/savings?period_days={int(period_days)}")
        if data is None:
            data = self.local_report(period_days)
        return RoutingMetrics.from_dict(data)

    def get_metrics_summary(self, period_days: int = 7) -> dict[str, Any]:
        data = None
        if self.remote is not None:
            data = self._remote_get(f"/metrics/summary?period_days={int(period_days)}")
        if data is None:
            data = self.local_report(period_days)
        return data
