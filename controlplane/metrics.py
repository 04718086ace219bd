"""Prometheus instruments of the flag server (collected by config.metrics at /metrics).

Each is updated in the process that serves the request, with an in-memory increment: with
PROMETHEUS_MULTIPROC_DIR set (the run command sets it), prometheus_client writes it to an mmap'd
file per process, and /metrics sums the files of every worker.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FLAGS_REQUESTS = Counter(
    "routeplane_flags_requests",
    "GET /api/v1/flags answers, by HTTP status and by what answered (fast path or Django).",
    ["status", "served_by"],
)
LONG_POLL_WAITERS = Gauge(
    "routeplane_flags_long_poll_waiters",
    "Long-polls parked on the flags fast path, waiting for a new revision.",
    multiprocess_mode="livesum",
)
PROPAGATION_SECONDS = Histogram(
    "routeplane_flags_propagation_seconds",
    "From a revision's creation (in the writing transaction) to its document being served "
    "and pushed to long-polls by a flag server process.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Children bound once: the 304 path pays one increment, not a label lookup.
_FAST = {status: FLAGS_REQUESTS.labels(str(status), "fast") for status in (200, 304, 429)}


def count_flags_response(status: int, *, fast: bool) -> None:
    child = _FAST.get(status) if fast else None
    if child is None:
        child = FLAGS_REQUESTS.labels(str(status), "fast" if fast else "django")
    child.inc()
