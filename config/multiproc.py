"""prometheus_client's multiprocess directory: where each worker process keeps its counters.

Every web worker writes its counters to mmap'd files there and /metrics sums them, so a scrape
sees all workers whichever one answers. The files must start empty with each server start (a
dead process's counters would otherwise be summed forever), so the run command calls
`fresh_multiproc_dir` once, before it starts the workers. No Django here: run.py imports it.
"""

from __future__ import annotations

from pathlib import Path

ENV_NAME = "PROMETHEUS_MULTIPROC_DIR"


def fresh_multiproc_dir(path: Path) -> Path:
    """Create `path` and delete the metric files a previous run left in it."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path
