"""A live control plane for SDK and flags tests: uvicorn (2 workers) on the pytest test database.

Import the fixtures into a test module or conftest (`from tests.flags_live import *`-style, by
name). Data these tests need must be committed, so the server's own connections see it: the
`live_router` fixture writes through the services with the database unblocked, under a unique
slug (routers with audit rows cannot be deleted: the audit log is append-only).

Tests using `live_app` must not be transactional (no `django_db(transaction=True)`): pytest-django
would TRUNCATE every table after each test while the server still writes (client upserts, key
use), which can deadlock. Instead the module's server is stopped first and the database flushed
after it (`live_app`'s teardown).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers import (  # noqa: F401  (re-exported for the tests)
    app_env,
    stop_process,
    test_database_url,
    uvicorn_server,
    wait_healthy,
)


def live_env(database_url: str, **extra: str) -> dict[str, str]:
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/2")
    defaults = {"ROUTEPLANE_FLAGS_RECHECK_SECONDS": "0.5", "ROUTEPLANE_CLIENT_FLUSH_SECONDS": "0.3"}
    return app_env(database_url, redis_url, **{**defaults, **extra})


@pytest.fixture(scope="session")
def flags_database_url(django_db_setup, django_db_blocker) -> Iterator[str]:
    """The test database's URL. pytest-django creates it only for tests marked django_db, and
    tests using the live app are not: when none of the session's tests is, create it here."""
    import dj_database_url
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    created = None
    configured = dj_database_url.parse(os.environ["DATABASE_URL"])["NAME"]
    if settings.DATABASES["default"]["NAME"] == configured:  # still the real database
        with django_db_blocker.unblock():
            created = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield test_database_url()
    if created is not None:
        with django_db_blocker.unblock():
            teardown_databases(created, verbosity=0)


@pytest.fixture(scope="module")
def live_app(flags_database_url, django_db_blocker) -> Iterator[str]:
    """Base URL of a control plane with 2 worker processes (each its own flags cache).

    Teardown: the server stops before the database is flushed, so nothing it writes can
    deadlock with the TRUNCATE, and no committed row outlives the module.
    """
    with uvicorn_server(live_env(flags_database_url), workers=2) as (base, _process):
        yield base
    flush_database(django_db_blocker)


def flush_database(django_db_blocker) -> None:
    """Empty every table, as pytest-django does after a transactional test."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("flush", verbosity=0, interactive=False)


@pytest.fixture
def committed(flags_database_url, django_db_blocker) -> Iterator[None]:
    """Database access outside a test transaction: what we write is visible to the server.

    Needs the test database (flags_database_url), or the writes would go to the real one.
    """
    with django_db_blocker.unblock():
        yield


@dataclass
class LiveRouter:
    slug: str
    router_id: int
    router_key: str
    operator_key: str
    viewer_key: str

    def router(self):
        from controlplane.models import Router

        return Router.objects.get(pk=self.router_id)


@pytest.fixture
def live_router(committed) -> LiveRouter:
    return make_live_router()


def make_live_router() -> LiveRouter:
    """A committed router with a key of each role, under a unique slug (needs `committed`)."""
    from controlplane.actors import Actor
    from controlplane.services import create_api_key, create_router

    actor = Actor("user:live-test", "127.0.0.1")
    slug = f"live-{uuid.uuid4().hex[:10]}"
    router = create_router(slug=slug, actor=actor)
    keys = {
        role: create_api_key(router=router, role=role, actor=actor)[1]
        for role in ("router", "operator", "viewer")
    }
    return LiveRouter(slug, router.pk, keys["router"], keys["operator"], keys["viewer"])


def wait_until(predicate, timeout: float, interval: float = 0.01) -> float:
    """Seconds until `predicate()` was true; raises AssertionError after `timeout`."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
