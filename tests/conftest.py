"""Shared fixtures: real PostgreSQL (DATABASE_URL or embedded), real Redis."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DEBUG", "1")

AUDIT_TRUNCATE_SETTING = "SET LOCAL routeplane.allow_audit_truncate = 'on'"


def _flush_past_the_audit_trigger() -> None:
    """Transactional tests end with a flush (TRUNCATE of every table); the audit log refuses
    TRUNCATE unless this session setting is on (migration 0005), so the test flush sets it,
    inside the flush's own transaction. Nothing outside the tests does."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    sql_flush = DatabaseOperations.sql_flush
    if getattr(sql_flush, "allows_audit_truncate", False):
        return

    def flush_allowing_audit_truncate(self, *args, **kwargs):
        statements = sql_flush(self, *args, **kwargs)
        return [AUDIT_TRUNCATE_SETTING, *statements] if statements else statements

    flush_allowing_audit_truncate.allows_audit_truncate = True
    DatabaseOperations.sql_flush = flush_allowing_audit_truncate


def pytest_configure(config) -> None:
    _flush_past_the_audit_trigger()


@pytest.fixture
def actor():
    from controlplane.actors import Actor

    return Actor("user:test-operator", "127.0.0.1")


@pytest.fixture
def router(db, actor):
    from controlplane.services import create_router

    return create_router(slug="checkout", name="Checkout router", actor=actor)


def _key(router, role, actor):
    from controlplane.services import create_api_key

    _, raw = create_api_key(router=router, role=role, actor=actor, name=f"{role} key")
    return raw


@pytest.fixture
def operator_key(router, actor) -> str:
    return _key(router, "operator", actor)


@pytest.fixture
def viewer_key(router, actor) -> str:
    return _key(router, "viewer", actor)


@pytest.fixture
def router_key(router, actor) -> str:
    return _key(router, "router", actor)


def _client(raw_key: str | None):
    from rest_framework.test import APIClient

    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def operator_api(operator_key):
    return _client(operator_key)


@pytest.fixture
def viewer_api(viewer_key):
    return _client(viewer_key)


@pytest.fixture
def router_api(router_key):
    return _client(router_key)


@pytest.fixture
def anonymous_api():
    return _client(None)


@pytest.fixture
def operator_user(db, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("olivia", password="operator-pass-123")
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    return user


@pytest.fixture
def viewer_user(db, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("victor", password="viewer-pass-123")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    return user
