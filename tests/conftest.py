"""Shared fixtures: real PostgreSQL (DATABASE_URL or embedded), real Redis."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DEBUG", "1")


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
