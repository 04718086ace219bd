"""Tracking fixtures: event factories, a live Celery worker on the test database."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.servers import celery_worker_process, test_database_url


def make_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "selected_model": "gpt-3.5-turbo",
    }
    event.update(fields)
    if isinstance(event["timestamp"], datetime):
        event["timestamp"] = event["timestamp"].isoformat()
    return event


def post_events(api, events: list[dict[str, Any]] | Any):
    import orjson

    body = events if isinstance(events, bytes) else orjson.dumps({"events": events})
    return api.post("/api/v1/events", body, content_type="application/json")


@pytest.fixture(scope="session")
def celery_worker(django_db_setup) -> Iterator[subprocess.Popen]:
    """A real `celery worker` process on the test database and this run's Redis database."""
    with celery_worker_process(test_database_url()) as worker:
        yield worker
