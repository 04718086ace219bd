"""The audit page: filters, pagination, readable diffs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane import services
from controlplane.actors import Actor
from controlplane.models import AuditEntry

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def history(router):
    alice, bob = Actor("user:alice"), Actor("user:bob")
    other = services.create_router(slug="search", name="Search", actor=bob)
    services.update_config(router=router, changes={"threshold": 0.25}, actor=alice)
    services.set_kill_switch(router=router, engaged=True, reason="bad answers", actor=bob)
    services.set_phase(router=other, phase="monitoring", actor=alice)
    return router, other


def test_audit__all_entries_newest_first_with_readable_diff(viewer_client, history):
    body = viewer_client.get("/audit/").content.decode()
    # checkout create, config, kill switch; search create, phase
    assert "5 entries" in body
    order = [body.index(f'action-badge">{a}<') for a in ("phase.set", "kill_switch.engage")]
    assert order[0] < order[1] < body.index('action-badge">config.update<')
    assert '<del class="before">0.11593</del>' in body and '<ins class="after">0.25</ins>' in body
    assert "“bad answers”" in body


@pytest.mark.parametrize(
    ("query", "present", "absent"),
    [
        ("router=search", ["phase.set"], ["config.update", "kill_switch.engage"]),
        ("actor=bob", ["kill_switch.engage"], ["config.update", "phase.set"]),
        ("action=kill_switch", ["kill_switch.engage"], ["config.update", "phase.set"]),
        ("router=checkout&action=config.update", ["config.update"], ["kill_switch.engage"]),
    ],
)
def test_audit__filters(viewer_client, history, query, present, absent):
    response = viewer_client.get(f"/audit/?{query}", **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and 'id="audit-results"' in body
    for action in present:
        assert f">{action}<" in body
    for action in absent:
        assert f">{action}<" not in body


def test_audit__time_range(viewer_client, history):
    future = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    body = viewer_client.get(f"/audit/?since={future}").content.decode()
    assert "0 entries" in body and "No entries match" in body
    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    body = viewer_client.get(f"/audit/?since={past}&until={future}").content.decode()
    assert "5 entries" in body


def test_audit__bad_date__400_field_error(viewer_client, history):
    response = viewer_client.get("/audit/?since=yesterday-ish")
    assert response.status_code == 400
    assert "Enter a valid date/time" in response.content.decode()


def test_audit__unknown_router_choice__400(viewer_client, history):
    assert viewer_client.get("/audit/?router=nope").status_code == 400


def test_audit__paginated_50_per_page(viewer_client, router):
    actor = Actor("user:pager")
    for percent in range(60):
        services.set_flag(
            router=router,
            name="routellm_a_b_testing",
            enabled=True,
            rollout_percent=percent,
            actor=actor,
        )
    assert AuditEntry.objects.count() == 61
    body = viewer_client.get("/audit/?actor=pager").content.decode()
    assert "page 1 of 2" in body and body.count('class="card audit-entry"') == 50
    assert "actor=pager&amp;page=2" in body
    body = viewer_client.get("/audit/?actor=pager&page=2").content.decode()
    assert body.count('class="card audit-entry"') == 10
