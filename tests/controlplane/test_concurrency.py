"""Two database connections writing at once: one wins, the other gets 412 or applies on top."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from controlplane import services
from controlplane.actors import Actor
from controlplane.models import Router
from controlplane.selectors import current_revision

pytestmark = pytest.mark.django_db(transaction=True)


def _run_contended(first, second):
    """Run `first` in a transaction that holds the router lock until `second` is blocked."""
    holding = threading.Event()
    release = threading.Event()
    outcome: dict[str, object] = {}

    def writer_a():
        try:
            with transaction.atomic():
                outcome["a"] = first()
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    def writer_b():
        holding.wait(10)
        try:
            outcome["b"] = second()
        except Exception as exc:  # noqa: BLE001 - the outcome is what we assert on
            outcome["b"] = exc
        finally:
            connection.close()

    a = threading.Thread(target=writer_a)
    b = threading.Thread(target=writer_b)
    a.start()
    b.start()
    holding.wait(10)
    # B now waits on the row lock A holds; give it time to reach the lock, then commit A.
    b.join(0.5)
    assert b.is_alive(), "the second writer should be blocked on the router's row lock"
    release.set()
    a.join(10)
    b.join(10)
    close_old_connections()
    return outcome


def test_two_writers_same_if_match__one_wins_other_412_nothing_lost():
    actor = Actor("user:a")
    router = services.create_router(slug="race", actor=actor)

    outcome = _run_contended(
        lambda: services.set_flag(
            router=router,
            name="routellm_enabled",
            enabled=True,
            actor=Actor("user:a"),
            expected_revision=1,
        ),
        lambda: services.update_config(
            router=router,
            changes={"threshold": 0.7},
            actor=Actor("user:b"),
            expected_revision=1,
        ),
    )

    assert outcome["a"].number == 2
    assert isinstance(outcome["b"], services.StaleRevision)
    router = Router.objects.get(pk=router.pk)
    revision = current_revision(router=router)
    assert revision.number == 2
    assert revision.flags_dict()["routellm_enabled"]["enabled"] is True
    assert revision.config["threshold"] == 0.11593


def test_two_writers_without_if_match__both_apply_in_order_nothing_lost():
    actor = Actor("user:a")
    router = services.create_router(slug="race", actor=actor)

    outcome = _run_contended(
        lambda: services.set_flag(
            router=router, name="routellm_enabled", enabled=True, actor=Actor("user:a")
        ),
        lambda: services.update_config(
            router=router, changes={"threshold": 0.7}, actor=Actor("user:b")
        ),
    )

    assert (outcome["a"].number, outcome["b"].number) == (2, 3)
    revision = current_revision(router=Router.objects.get(pk=router.pk))
    assert revision.flags_dict()["routellm_enabled"]["enabled"] is True
    assert revision.config["threshold"] == 0.7
