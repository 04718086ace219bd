"""CostTracker: record routing decisions and their outcomes; report cost savings. No Django.

Local mode (no control plane configured): events stay in memory and reports are computed from
them (routing.reports) with the control plane's cost rule and price table, so the same events
give the same report either way. Remote mode (ROUTEPLANE_URL + ROUTEPLANE_API_KEY, or the `url`
/ `api_key` arguments): `track_routing_decision` only puts the event on a bounded in-memory
queue and returns; routing.sender delivers it (batches, retries, a spool per URL + key).

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
import threading
import time
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from routing.events import (
    OUTCOME_FIELDS,
    new_event_id,
    validate_event,
    validate_events,
    validate_outcome,
)
from routing.prices import PriceBook, price_book_from_table, shipped_price_book
from routing.remote import Remote, request, resolve_remote
from routing.reports import RoutingMetrics, TrackedEvent, local_report
from routing.sender import EVENTS, MAX_BATCH, OUTCOMES, Sender, default_spool_root

log = logging.getLogger("routing.tracker")

# The optional fields a caller may pass as keywords.
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
# Every field an event is sent with (others passed as keywords are ignored).
ITEM_FIELDS = EVENT_FIELDS | {
    "event_id",
    "timestamp",
    "selected_model",
    "domains",
    "routing_method",
    "estimated_cost",
    "text_sha256",
    "text_length",
}
REPORT_FLUSH_SECONDS = 5.0


# --- The tracker -----------------------------------------------------------------------------


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
        strong_model: str | None = None,
        weak_model: str | None = None,
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
        # Argument > ROUTELLM_* environment > the config's defaults (as RouteLLMConfig).
        self.strong_model = (
            strong_model or os.environ.get("ROUTELLM_STRONG_MODEL") or "gpt-4-1106-preview"
        )
        self.weak_model = weak_model or os.environ.get("ROUTELLM_WEAK_MODEL") or "gpt-3.5-turbo"
        # Local reports price with the control plane's shipped table unless told otherwise
        # ({model: (input, output) USD per 1M tokens}, or a PriceBook).
        if prices is None:
            self.prices = shipped_price_book()
        elif isinstance(prices, PriceBook):
            self.prices = prices
        else:
            self.prices = price_book_from_table(prices)
        self.invalid = 0  # events not recorded: the shared schema refused them
        self.sender: Sender | None = None
        if self.remote is not None:
            # The spool root (argument, ROUTEPLANE_SPOOL_DIR, or the cache directory) holds one
            # directory per control plane URL + key.
            self.sender = Sender(
                self.remote,
                spool_root=Path(spool_dir) if spool_dir else default_spool_root(),
                max_queue=max_queue,
                batch_size=batch_size,
                flush_interval=flush_interval,
                spool_max_bytes=spool_max_bytes,
                max_send_attempts=max_send_attempts,
                prepare_events=self._prepare_events,
            )
        # Remote mode keeps a smaller copy: only a fallback when the reports endpoint is down.
        if history_limit is None:
            history_limit = 100_000 if self.remote is None else 10_000
        self.history_limit = max(1, history_limit)
        # Insertion-ordered by event id: outcomes find their event, the oldest go first.
        # (An OrderedDict: popping a plain dict's oldest key is O(n) once deletions pile up.)
        # Remote mode holds a pending event (a dict) until the sender thread validates it.
        self._history: collections.OrderedDict[str, TrackedEvent | dict[str, Any]] = (
            collections.OrderedDict()
        )
        self._history_lock = threading.Lock()
        self._problems: set[str] = set()  # kinds of problems already logged (each logged once)
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

        The event is validated by the schema the control plane uses (routing.events): when it
        is stored (local mode) or on the sender thread before it is posted (remote mode: the
        caller's thread only captures it). An invalid one is logged (once per kind of
        problem), counted in `dropped`, and neither kept nor sent, as the server would refuse
        it.
        """
        event_id = new_event_id()
        encoded = (text or "").encode("utf-8", "surrogatepass")
        # The keyword arguments' own dict becomes the pending event (no copy); the fields set
        # here win over extras of the same name, and unknown names are left out by
        # `_event_item`, which also makes the timestamp a datetime (off the caller's thread).
        event = extra
        event["event_id"] = event_id
        event["timestamp"] = time.time()
        event["selected_model"] = selected_model
        event["domains"] = list(domains) if domains else []
        event["routing_method"] = routing_method
        event["estimated_cost"] = estimated_cost
        event["text_sha256"] = hashlib.sha256(encoded).hexdigest()
        event["text_length"] = len(text or "")
        if self.sender is None:
            self._store(event)
            return event_id
        with self._history_lock:
            self._history[event_id] = event  # validated when first read (_tracked)
            while len(self._history) > self.history_limit:
                self._history.popitem(last=False)
        self.sender.put(EVENTS, event)
        return event_id

    def _event_item(self, pending: dict[str, Any]) -> dict[str, Any]:
        """A pending event as the server takes it (and the schema validates it)."""
        if pending.keys() <= ITEM_FIELDS:  # the usual case: nothing to leave out
            item = pending.copy()
        else:
            item = {name: value for name, value in pending.items() if name in ITEM_FIELDS}
        item["timestamp"] = datetime.fromtimestamp(pending["timestamp"], UTC)
        if item.get("model_tier") is None:
            model = item["selected_model"]
            item["model_tier"] = (
                "strong"
                if model == self.strong_model
                else "weak"
                if model == self.weak_model
                else "other"
            )
        return item

    def _store(self, pending: dict[str, Any]) -> None:
        """Local mode: validate the event and keep it."""
        valid, errors = validate_event(self._event_item(pending), datetime.now(UTC))
        if valid is None:
            self._refused(errors)
            return
        with self._history_lock:
            self._history[pending["event_id"]] = TrackedEvent(valid)
            while len(self._history) > self.history_limit:
                self._history.popitem(last=False)

    def _prepare_events(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Remote mode, on the sender thread: validate a batch of pending events; the valid
        ones are posted, the invalid ones counted. (Their history entries are settled only when
        read: see `_tracked`.)"""
        items = [self._event_item(pending) for pending in batch]
        ready = []
        for item, (valid, errors) in zip(
            items, validate_events(items, datetime.now(UTC)), strict=True
        ):
            if valid is None:
                self._refused(errors)
            else:
                ready.append(item)
        return ready

    def _tracked(self, event_id: str) -> TrackedEvent | None:
        """The history's event (the caller holds the lock). A pending one (remote mode) is
        validated on first read; the sender thread counts it if invalid."""
        entry = self._history.get(event_id)
        if isinstance(entry, dict):
            valid, _ = validate_event(self._event_item(entry), datetime.now(UTC))
            if valid is None:
                del self._history[event_id]
                return None
            entry = self._history[event_id] = TrackedEvent(valid)
        return entry

    def _refused(self, errors: dict[str, list[str]]) -> None:
        with self._history_lock:  # the sender thread and a spilling caller may both count
            self.invalid += 1
        self._log_once(
            "invalid-event:" + ",".join(sorted(errors)),
            "routeplane: event not recorded, invalid %s",
            errors,
        )

    def record_outcome(
        self,
        event_id: str,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        latency_ms: float | None = None,
        success: bool | None = None,
        error: str | None = None,
        quality: float | None = None,
    ) -> bool:
        """Attach a call's outcome to its decision's event; True when it was taken.

        One outcome per event: the same one again is a no-op, a different one is refused.
        Fields left None leave the event's own. Locally the event is updated (and so re-priced
        by the shared cost rule); in remote mode the outcome is also posted after its event.
        Never raises: a refused outcome is logged once per kind of problem.
        """
        try:
            values = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "latency_ms": latency_ms,
                "success": success,
                "error": error,
                "quality": quality,
            }
            item = {"event_id": str(event_id)} | {k: v for k, v in values.items() if v is not None}
            return self._record_outcome(item)
        except Exception as exc:  # the caller's request must never fail because of this
            self._log_once(f"outcome-{exc.__class__.__name__}", "routeplane: outcome: %r", exc)
            return False

    def _record_outcome(self, item: dict[str, Any]) -> bool:
        outcome, errors = validate_outcome(item)
        if outcome is None:
            self._log_once(
                "invalid-outcome:" + ",".join(sorted(errors)),
                "routeplane: outcome not recorded, invalid %s",
                errors,
            )
            return False
        with self._history_lock:
            tracked = self._tracked(item["event_id"])
            if tracked is None and self.sender is None:
                self._log_once(
                    "outcome-unknown-event",
                    "routeplane: outcome not recorded: no event %s in this process",
                    item["event_id"],
                )
                return False
            if tracked is not None:
                if tracked.outcome is not None:
                    if tracked.outcome == item:
                        return True  # the same outcome again: already recorded
                    self._log_once(
                        "outcome-conflict",
                        "routeplane: outcome not recorded: event %s already has another one",
                        item["event_id"],
                    )
                    return False
                tracked.outcome = item
                for name in OUTCOME_FIELDS:
                    value = getattr(outcome, name)
                    if value is None:
                        continue
                    if name == "quality":
                        tracked.quality = value
                    else:
                        setattr(tracked.event, name, value)
        if self.sender is not None:
            # An event this process no longer holds (history is bounded) is still the
            # server's to judge; the sender posts the outcome after the queued event.
            self.sender.put(OUTCOMES, item)
        return True

    def _log_once(self, kind: str, message: str, *args: Any) -> None:
        if kind not in self._problems:
            self._problems.add(kind)
            log.warning(message, *args)

    # --- delivery (remote mode) ------------------------------------------------------------

    @property
    def sent(self) -> int:
        """Events the control plane acknowledged (accepted or duplicate)."""
        return self.sender.counts[EVENTS].sent if self.sender else 0

    @property
    def spilled(self) -> int:
        """Events written to the spool."""
        return self.sender.counts[EVENTS].spilled if self.sender else 0

    @property
    def dropped(self) -> int:
        """Events lost for good: invalid, spool full, or refused by the server as invalid."""
        return self.invalid + (self.sender.counts[EVENTS].dropped if self.sender else 0)

    @property
    def queued(self) -> int:
        return self.sender.queued if self.sender else 0

    @property
    def spool_dir(self) -> Path | None:
        """This control plane + key's spool directory (None in local mode)."""
        return self.sender.spool_dir if self.sender else None

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued; True when the queue drained (sent or spooled) in time."""
        return self.sender.flush(timeout) if self.sender else True

    def close(self, timeout: float = 2.0) -> None:
        """Flush for at most `timeout` s, then spool whatever is left (also run at exit)."""
        if self.sender is not None:
            self.sender.close(timeout)

    def replay_spool(self) -> int:
        """Send spooled items now (normally done by the background thread)."""
        return self.sender.replay_spool() if self.sender else 0

    # --- reports -------------------------------------------------------------------------

    def local_events(self) -> list[TrackedEvent]:
        """The events this process recorded (bounded by `history_limit`), oldest first."""
        with self._history_lock:
            tracked = [self._tracked(event_id) for event_id in list(self._history)]
        return [t for t in tracked if t is not None]

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
