"""Dashboard fixtures: logged-in Django test clients per role, and a clean login limiter.

Also lists, at the end of the run, the screenshots the browser tests wrote (test-artifacts/):
they are meant to be looked at, not only written.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# This conftest is imported at collection, before any test runs: older files are not this run's.
_RUN_STARTED = time.time()


def pytest_terminal_summary(terminalreporter) -> None:
    shots = sorted(path for path in ARTIFACTS.glob("*.png") if path.stat().st_mtime >= _RUN_STARTED)
    if shots:
        terminalreporter.write_sep("-", f"{len(shots)} screenshots written")
        for path in shots:
            terminalreporter.write_line(str(path))


@pytest.fixture(autouse=True)
def _clean_cache():
    # The login limiter counts in Redis (this engineer's own db): start every test at zero.
    from django.core.cache import cache

    try:
        cache.clear()
    except Exception:
        pass
    yield


def _user(django_user_model, username, password, group):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username, password=password)
    # get_or_create: transactional tests (browser, worker) flush the migration-made groups.
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def operator_user(db, django_user_model):
    return _user(django_user_model, "olivia", "operator-pass-123", "operator")


@pytest.fixture
def viewer_user(db, django_user_model):
    return _user(django_user_model, "victor", "viewer-pass-123", "viewer")


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


@pytest.fixture
def viewer_client(client, viewer_user):
    client.force_login(viewer_user)
    return client


@pytest.fixture
def no_role_client(client, django_user_model):
    user = django_user_model.objects.create_user("nora", password="no-role-pass-123")
    client.force_login(user)
    return client
