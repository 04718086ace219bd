"""Change requests and scheduled changes in a real Chromium: two operators, one policy."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from controlplane import services
from controlplane.change_requests import set_change_policy
from controlplane.models import ChangeRequest, ScheduledChange
from controlplane.scheduled_changes import apply_due_changes
from tests.dashboard.test_browser import (  # noqa: F401  (fixtures)
    Dialogs,
    _no_persistent_db_connections,
    browser,
    dialogs,
    log_in,
    page,
    shoot,
)

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def second_operator(django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("otto", password="second-operator-pass-9")
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    return user


def test_change_request__held_by_policy__another_operator_approves(
    transactional_db, live_server, browser, router, operator_user, second_operator, actor
):
    base = live_server.url
    services.set_phase(router=router, phase="monitoring", actor=actor)
    services.set_phase(router=router, phase="single_domain", domain="legal", actor=actor)
    set_change_policy(router=router, actor=actor, approve_full_phase=True)

    # Olivia asks for phase full: the policy holds it.
    olivia = browser.new_context()
    olivia_page = olivia.new_page()
    olivia_dialogs = Dialogs()
    olivia_page.on("dialog", olivia_dialogs)
    log_in(olivia_page, base, "olivia", "operator-pass-123")
    olivia_page.goto(f"{base}/routers/{router.slug}/")
    olivia_page.locator("#phase-advance").click()
    expect(olivia_page.locator(".notice-success")).to_contain_text("Held for approval")
    held = ChangeRequest.objects.get(router=router)
    item = olivia_page.locator(f"#change-request-{held.pk}")
    expect(item).to_contain_text("going to phase full needs approval")
    expect(item).to_contain_text("Your own request")
    expect(item.get_by_role("button", name="Approve")).to_have_count(0)
    router.refresh_from_db()
    assert router.current_revision.phase == "single_domain"
    olivia.close()

    # Otto approves it; the router goes full.
    otto = browser.new_context()
    otto_page = otto.new_page()
    otto_dialogs = Dialogs()
    otto_page.on("dialog", otto_dialogs)
    log_in(otto_page, base, "otto", "second-operator-pass-9")
    otto_page.goto(f"{base}/routers/{router.slug}/")
    shoot(otto_page, "change-request")
    otto_page.locator(f"#approve-{held.pk}").click()
    expect(otto_page.locator(".notice-success")).to_contain_text(f"#{held.pk} approved")
    assert otto_dialogs.messages == [
        f"Approve change request #{held.pk} on {router.name}? It is published at once."
    ]
    expect(otto_page.locator(".status-strip")).to_contain_text("Full")
    held.refresh_from_db()
    assert held.status == "approved" and held.decided_by == "user:otto"
    router.refresh_from_db()
    assert router.current_revision.phase == "full"
    assert router.current_revision.actor == "user:olivia"
    otto.close()


def test_scheduled_change__scheduled_in_the_page__applied_at_its_time(
    transactional_db, live_server, page, dialogs, router, operator_user
):
    base = live_server.url
    log_in(page, base, "olivia", "operator-pass-123")
    page.goto(f"{base}/routers/{router.slug}/")
    form = page.locator("#scheduled-changes")
    form.get_by_label("Action").select_option("flag.set")
    form.get_by_label("Flag").select_option("routellm_creative_domain")
    form.get_by_label("Enabled").check()
    form.get_by_label("Rollout").fill("25")
    when = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    form.get_by_label("When (UTC)").fill(when)
    form.get_by_role("button", name="Schedule").click()
    expect(page.locator(".notice-success")).to_contain_text("Scheduled change #")
    change = ScheduledChange.objects.get(router=router)
    assert change.params == {
        "name": "routellm_creative_domain",
        "enabled": True,
        "rollout_percent": 25,
    }
    item = page.locator(f"#scheduled-change-{change.pk}")
    expect(item).to_contain_text("Pending")
    shoot(page, "scheduled-change", sizes=({"width": 1280, "height": 900},))

    # The beat job's run, an hour later: applied as "scheduler", shown on reload.
    assert apply_due_changes(now=timezone.now() + timedelta(hours=2)) == 1
    page.reload()
    expect(page.locator(f"#scheduled-change-{change.pk}")).to_contain_text("Applied")
    router.refresh_from_db()
    assert router.current_revision.actor == "scheduler"
    assert router.current_revision.flags_dict()["routellm_creative_domain"]["rollout_percent"] == 25

    # A second one, cancelled from the page before its time.
    form.get_by_label("Action").select_option("phase.set")
    form.get_by_label("Phase").select_option("monitoring")
    form.get_by_label("When (UTC)").fill(when)
    form.get_by_role("button", name="Schedule").click()
    expect(page.locator(".scheduled-change")).to_have_count(2)
    second = ScheduledChange.objects.filter(router=router).order_by("-id").first()
    assert second.pk != change.pk and second.params == {"phase": "monitoring", "domain": None}
    page.locator(f"#schedule-cancel-{second.pk}").click()
    expect(page.locator(f"#scheduled-change-{second.pk}")).to_contain_text("Cancelled")
    assert dialogs.messages[-1] == f"Cancel scheduled change #{second.pk}?"
    assert apply_due_changes(now=timezone.now() + timedelta(hours=2)) == 0


def test_scheduled_change__bad_input__field_error_and_nothing_stored(
    transactional_db, live_server, page, router, operator_user
):
    base = live_server.url
    log_in(page, base, "olivia", "operator-pass-123")
    page.goto(f"{base}/routers/{router.slug}/")
    form = page.locator("#scheduled-changes")
    form.get_by_label("Action").select_option("phase.set")
    form.get_by_label("Phase").select_option("single_domain")  # no domain chosen
    when = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    form.get_by_label("When (UTC)").fill(when)
    form.get_by_role("button", name="Schedule").click()
    expect(page.locator(".notice-error")).to_contain_text("Nothing changed")
    assert not ScheduledChange.objects.exists()
