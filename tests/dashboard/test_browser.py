"""End to end in a real Chromium (Debian's), driven by Playwright, against the live server.

Screenshots of each main page land in test-artifacts/ (gitignored) at laptop and phone widths;
each path is printed, and tests/dashboard/conftest.py lists them at the end of the run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from controlplane import services
from controlplane.actors import Actor
from controlplane.change_requests import set_change_policy
from controlplane.models import ApiKey, AuditEntry, ChangeRequest, RouterClient, ScheduledChange
from controlplane.scheduled_changes import apply_due_changes

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are sync.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

ADVANCE_CONFIRM = "Move Checkout router to Single domain? One domain routed through RouteLLM."
ENGAGE_CONFIRM = (
    "Engage the kill switch on Checkout router? RouteLLM routing stops for every request."
)
ROLLBACK_CONFIRM = (
    "Roll Checkout router back to revision 2? Its config, flags and phase become current."
)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _no_persistent_db_connections():
    """Live-server threads close their connection after each request, so none outlives the test
    (a persistent one would block dropping the test database)."""
    from django.db import connections

    settings_dict = connections.settings["default"]
    old = settings_dict.get("CONN_MAX_AGE", 0)
    settings_dict["CONN_MAX_AGE"] = 0
    yield
    settings_dict["CONN_MAX_AGE"] = old


class Dialogs:
    """Answers every dialog (OK, as an operator would, unless `accept` is False) and keeps its
    message, so a test can assert which confirms were asked."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.accept = True

    def __call__(self, dialog) -> None:
        self.messages.append(dialog.message)
        if self.accept:
            dialog.accept()
        else:
            dialog.dismiss()

    def wait_for(self, page, message: str, count: int = 1) -> None:
        """Until `message` has been asked `count` times (the page's events need the loop)."""
        deadline = time.monotonic() + 5
        while self.messages.count(message) < count:
            assert time.monotonic() < deadline, f"no dialog {message!r}; saw {self.messages}"
            page.wait_for_timeout(20)


@pytest.fixture
def dialogs() -> Dialogs:
    return Dialogs()


@pytest.fixture
def page(browser, dialogs):
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", dialogs)
    yield page
    context.close()


def shoot(page, name: str, sizes: tuple[dict[str, int], ...] = (LAPTOP, PHONE)) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    before = page.viewport_size
    for size in sizes:
        page.set_viewport_size(size)
        path = ARTIFACTS / f"{name}-{size['width']}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
    page.set_viewport_size(before)


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")


def wait_for_revision(flags, number: int, timeout: float) -> float:
    """Seconds until the SDK's live document reaches `number` (fails after `timeout`)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if flags.document().get("revision") == number:
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"SDK still at revision {flags.document().get('revision')}, not {number}")


def propagation(page, flags, path: str, number: int, act: Callable[[], None]) -> float:
    """Seconds from the write's HTTP answer reaching the browser to the SDK holding `number`.

    The clock starts when the answer is in, not when the page has swapped it in, so the time the
    browser spends rendering cannot hide a slow SDK.
    """
    assert flags.document().get("revision") == number - 1  # the SDK waits in its long-poll

    def is_the_write(response) -> bool:
        return response.request.method == "POST" and path in response.url

    with page.expect_response(is_the_write) as answer:
        act()
    assert answer.value.status == 200, answer.value.text()[:500]
    seconds = wait_for_revision(flags, number, timeout=1.0)
    print(f"SDK at revision {number} {seconds * 1000:.0f} ms after the {path} answer")
    return seconds


def _events(router) -> None:
    from tracking.ingest import record_events

    now = timezone.now()
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "timestamp": (now - timedelta(days=i % 7, minutes=1)).isoformat(),
            "selected_model": "gpt-3.5-turbo" if i % 3 else "gpt-4-1106-preview",
            "model_tier": "weak" if i % 3 else "strong",
            "routing_method": "routellm",
            "domains": [("legal", "technical", "medical")[i % 3]],
            "prompt_tokens": 800 + i * 10,
            "completion_tokens": 300 + i * 5,
            "latency_ms": 120 + (i * 37) % 400,
            "success": i % 11 != 0,
            "fallback_used": i % 11 == 0,
        }
        for i in range(60)
    ]
    record_events(router_id=router.pk, payload={"events": events})


def test_operator_path__phase_kill_switch_rollback__sdk_follows_and_audit_lists_them(
    transactional_db,
    live_server,
    page,
    dialogs,
    router,
    router_key,
    operator_user,
    tmp_path,
    monkeypatch,
):
    from routing import FeatureFlags
    from routing.client import FlagsPoller

    # The SDK's real long-poll (30 s): a new revision within a second of the write can only come
    # from the waiting poll being woken, not from a poll that happened to time out and return.
    monkeypatch.setitem(FlagsPoller.__init__.__kwdefaults__, "wait_seconds", 30)

    base = live_server.url
    other = Actor("user:someone-else", "10.0.0.9")
    services.set_phase(router=router, phase="monitoring", actor=other)  # revision 2
    _events(router)

    flags = FeatureFlags(url=base, api_key=router_key, cache_path=tmp_path / "flags.json")
    try:
        wait_for_revision(flags, 2, timeout=5)
        assert flags.poller.wait_seconds == 30
        assert not flags.is_enabled(FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN)

        page.goto(f"{base}/routers/checkout/")
        assert "/login/" in page.url
        shoot(page, "login")
        log_in(page, base, "olivia", "operator-pass-123")
        page.goto(f"{base}/routers/checkout/")
        page.wait_for_url(f"{base}/routers/checkout/")

        # Monitoring -> single domain (technical), one click plus the confirm.
        page.get_by_label("Domain", exact=True).select_option("technical")
        advance = page.get_by_role("button", name="Advance to Single domain")
        assert propagation(page, flags, "/phase/", 3, advance.click) < 1.0
        assert dialogs.messages == [ADVANCE_CONFIRM]
        page.get_by_text("Now at revision 3").wait_for()
        assert flags.is_enabled(FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN)
        assert page.locator("#current-revision").inner_text() == "#3"

        # Kill switch, with a reason. It asks first, and Cancel changes nothing.
        page.get_by_label("Reason (required, kept in the audit log)").fill("weak model fails tests")
        engage = page.get_by_role("button", name="Engage kill switch")
        dialogs.accept = False
        engage.click()
        dialogs.wait_for(page, ENGAGE_CONFIRM)
        page.wait_for_timeout(500)  # time for a request that must not be sent
        router.refresh_from_db()
        assert router.current_revision.number == 3 and not router.current_revision.kill_switch
        assert page.locator("#current-revision").inner_text() == "#3"
        dialogs.accept = True
        assert propagation(page, flags, "/kill-switch/", 4, engage.click) < 1.0
        dialogs.wait_for(page, ENGAGE_CONFIRM, count=2)
        page.get_by_text("Kill switch engaged: routing is off.").wait_for()
        assert not flags.is_enabled(FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN)
        assert page.get_by_role("button", name="Release kill switch").is_visible()

        # Roll back to revision 2 from the history.
        rollback = page.locator("#revision-2").get_by_role("button", name="Roll back to this")
        assert propagation(page, flags, "/rollback/2/", 5, rollback.click) < 1.0
        page.get_by_text("Rolled back to revision 2.").wait_for()
        assert flags.document()["phase"] == "monitoring"
        assert flags.document()["kill_switch"] is True  # a rollback keeps the kill switch
        assert dialogs.messages == [
            ADVANCE_CONFIRM,
            ENGAGE_CONFIRM,
            ENGAGE_CONFIRM,
            ROLLBACK_CONFIRM,
        ]
        shoot(page, "router")
    finally:
        if flags.poller is not None:
            flags.poller.stop()
        # The server side of the SDK's last long-poll would hold a live-server thread and its
        # database connection for up to 30 s more; it rechecks the key every 0.1 s, and a
        # revoked key ends it at once.
        ApiKey.objects.filter(router=router).update(revoked_at=timezone.now())
        time.sleep(0.5)

    # The audit page lists all three, attributed to the operator.
    page.get_by_role("link", name="Audit log").first.click()
    page.wait_for_url(f"{base}/audit/*")
    page.get_by_label("Router").select_option("checkout")
    page.locator("#audit-results").get_by_text("rollback", exact=True).wait_for()
    for action in ("phase.set", "kill_switch.engage", "rollback"):
        entry = page.locator(".audit-entry", has=page.get_by_text(action, exact=True)).first
        assert "by user:olivia" in entry.inner_text()
    assert AuditEntry.objects.filter(actor="user:olivia").count() == 3
    shoot(page, "audit")

    page.goto(f"{base}/")
    page.get_by_role("link", name="Checkout router").wait_for()
    shoot(page, "overview")

    page.goto(f"{base}/routers/checkout/savings/?days=7")
    assert page.locator("svg polyline").count() >= 6
    page.get_by_role("link", name="30 days").click()
    page.wait_for_url("**/savings/?days=30")
    shoot(page, "savings")


def test_viewer__no_enabled_action_anywhere(
    transactional_db, live_server, page, router, viewer_user
):
    base = live_server.url
    services.set_phase(router=router, phase="monitoring", actor=Actor("user:x"))
    log_in(page, base, "victor", "viewer-pass-123")
    enabled_controls = """
        () => [...document.querySelectorAll(
                'main button, main input:not([type=hidden]), main select, main textarea')]
              .filter(e => !e.matches(':disabled') && !e.closest('form[method=get]'))
              .map(e => e.outerHTML.slice(0, 80))
    """
    for path in ("/routers/checkout/", "/routers/checkout/savings/"):
        page.goto(f"{base}{path}")
        assert page.evaluate(enabled_controls) == [], path
    page.goto(f"{base}/routers/checkout/")
    assert page.get_by_text("Viewers cannot change routers").first.is_visible()
    shoot(page, "router-viewer")


def focused(page) -> str:
    return page.evaluate("document.activeElement.id || document.activeElement.className")


def test_keyboard__tab_to_the_kill_switch_and_operate_controls(
    transactional_db, live_server, page, dialogs, router, operator_user
):
    base = live_server.url
    services.set_phase(router=router, phase="monitoring", actor=Actor("user:x"))
    log_in(page, base, "olivia", "operator-pass-123")
    page.goto(f"{base}/routers/checkout/")

    page.keyboard.press("Tab")
    assert focused(page) == "skip-link"
    for _ in range(30):  # through the header and page links, in document order
        page.keyboard.press("Tab")
        if focused(page) == "id_kill_reason":
            break
    else:
        pytest.fail("Tab never reached the kill switch's reason")
    page.keyboard.type("keyboard-only incident drill")
    page.keyboard.press("Tab")
    assert focused(page) == "kill-button"
    with page.expect_response(lambda r: "/kill-switch/" in r.url) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 200
    assert dialogs.messages == [ENGAGE_CONFIRM]  # Enter asks first, like a click
    page.get_by_text("Kill switch engaged: routing is off.").wait_for()
    router.refresh_from_db()
    assert router.current_revision.kill_switch_reason == "keyboard-only incident drill"
    # The panel was swapped; focus stays on the switch (now "Release") instead of the page top.
    assert focused(page) == "kill-button"
    assert page.evaluate("document.activeElement.textContent.trim()") == "Release kill switch"

    # A flag: Space ticks the box, the rollout is typed, Space on Save submits.
    page.locator("#id_flag_routellm_a_b_testing_enabled").focus()
    page.keyboard.press("Space")
    assert page.locator("#id_flag_routellm_a_b_testing_enabled").is_checked()
    page.keyboard.press("Tab")
    assert focused(page) == "id_flag_routellm_a_b_testing_rollout_percent"
    page.keyboard.press("Control+A")
    page.keyboard.type("25")
    page.keyboard.press("Tab")
    assert focused(page) == "flag-save-routellm_a_b_testing"
    with page.expect_response(lambda r: "/flags/routellm_a_b_testing/" in r.url) as answer:
        page.keyboard.press("Space")
    assert answer.value.status == 200
    page.get_by_text("Flag routellm_a_b_testing saved.").wait_for()
    router.refresh_from_db()
    state = router.current_revision.flags_dict()["routellm_a_b_testing"]
    assert state == {"enabled": True, "rollout_percent": 25}
    assert focused(page) == "flag-save-routellm_a_b_testing"


OVERFLOW = """
    () => ({
      width: document.documentElement.scrollWidth,
      wide: [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                     && !e.closest('.table-scroll'))
        .slice(0, 5)
        .map(e => `${e.tagName}.${e.className} ${(e.textContent || '').slice(0, 40)}`)
    })
"""


def test_phone_width__no_horizontal_overflow(
    transactional_db, live_server, page, router, router_key, operator_user
):
    base = live_server.url
    actor = Actor("user:someone-with-a-rather-long-name@example.com", "10.0.0.9")
    services.set_phase(router=router, phase="monitoring", actor=actor)
    services.set_phase(router=router, phase="single_domain", domain="technical", actor=actor)
    services.update_config(
        router=router,
        changes={"domain_routing_overrides": {"medical": {"enabled": True, "threshold": 0.05}}},
        actor=actor,
    )
    services.set_kill_switch(
        router=router,
        engaged=True,
        reason="the weak model answers wrong in legal; waiting for the vendor's fix (ticket 4711)",
        actor=actor,
    )
    services.create_router(
        slug="payments-eu-west-1-production-canary",
        name="Payments EU west 1 production canary",
        actor=actor,
    )
    RouterClient.objects.create(
        router=router,
        client_id="worker-7f9c2d1e.payments.internal:48213",
        sdk_version="routeplane-python/0.1.0",
        revision=2,
    )
    _events(router)
    log_in(page, base, "olivia", "operator-pass-123")
    page.set_viewport_size(PHONE)
    pages = {
        "overview": "/",
        "router": "/routers/checkout/",
        "savings": "/routers/checkout/savings/?days=30",
        "audit": "/audit/",
    }
    for name, path in pages.items():
        page.goto(f"{base}{path}")
        if name == "savings":
            page.locator("details summary").click()  # the daily table too
        found = page.evaluate(OVERFLOW)
        assert found["width"] <= PHONE["width"] + 1, (path, found)
        shoot(page, f"phone-{name}", sizes=(PHONE,))


def test_recompute__queue_down_is_said__then_queued_running_done(
    transactional_db, live_server, page, router, operator_user, monkeypatch
):
    from kombu.exceptions import OperationalError

    import tracking.tasks

    class QueueDown:
        def delay(self, router_id: int):
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tracking.tasks, "recompute_savings", QueueDown())
    base = live_server.url
    log_in(page, base, "olivia", "operator-pass-123")
    page.goto(f"{base}/routers/checkout/savings/")
    status = page.locator("#recompute-status")
    requests = page.locator(".kpi", has_text="Requests").locator("strong")
    expect(requests).to_have_text("0")

    # 503: base.html swaps no 5xx, but this answer is the status partial and is shown.
    page.get_by_role("button", name="Recompute now").click()
    expect(status).to_contain_text("the task queue is unreachable")
    expect(page.locator("#connection-error")).to_be_hidden()  # no generic toast on top

    # The queue is back: a stand-in task whose states the status view reads in turn.
    polls: list[str] = []

    class Worker:
        def delay(self, router_id: int):
            _events(router)  # what the recompute will have found
            return SimpleNamespace(id=str(uuid.uuid4()))

    class Result:
        def __init__(self, task_id: str) -> None:
            polls.append(task_id)
            running = len(polls) == 1
            self.state = "PROGRESS" if running else "SUCCESS"
            self.info = {"done": 1, "total": 2} if running else {"changed": 60}

    monkeypatch.setattr(tracking.tasks, "recompute_savings", Worker())
    monkeypatch.setattr("celery.result.AsyncResult", Result)
    page.get_by_role("button", name="Recompute now").click()
    expect(status).to_contain_text("Queued")
    expect(status).to_contain_text("Recomputing… 50 %")
    expect(status).to_contain_text("✓ Recomputed.")
    expect(requests).to_have_text("60")  # the figures reloaded...
    page.wait_for_timeout(1500)  # (a poll that should have stopped would show here)
    expect(status).to_have_text("✓ Recomputed.")  # ...and the done state stayed
    assert len(polls) == 2


def test_back_button__history_cache_miss__full_page_restored(
    transactional_db, live_server, page, router, operator_user
):
    base = live_server.url
    services.set_phase(router=router, phase="monitoring", actor=Actor("user:x"))
    log_in(page, base, "olivia", "operator-pass-123")

    def back_restores_from_server() -> None:
        with page.expect_response(
            lambda r: r.request.headers.get("hx-history-restore-request") == "true"
        ) as restore:
            page.go_back()
        assert restore.value.status == 200
        expect(page.locator("header.topbar")).to_have_count(1)
        expect(page.locator("main#main")).to_have_count(1)

    page.goto(f"{base}/routers/checkout/savings/?days=7")
    # No history cache: Back must fetch the page again (HX-History-Restore-Request).
    page.evaluate("htmx.config.historyCacheSize = 0")
    page.get_by_role("link", name="30 days").click()
    page.wait_for_url("**/savings/?days=30")
    back_restores_from_server()
    expect(page.locator("#savings-body .segmented a.active")).to_have_text("7 days")
    expect(page.locator("#savings-body")).to_have_count(1)

    page.goto(f"{base}/audit/")
    page.evaluate("htmx.config.historyCacheSize = 0")
    page.get_by_label("Action").select_option("phase.set")
    page.wait_for_url(lambda url: "action=phase.set" in url)
    back_restores_from_server()
    expect(page.locator("form.filters")).to_have_count(1)
    expect(page.locator("#audit-results")).to_have_count(1)


# --- Change requests and scheduled changes ------------------------------------------------


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
    form.get_by_label("Phase to set").select_option("monitoring")
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
    form.get_by_label("Phase to set").select_option("single_domain")  # no domain chosen
    when = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    form.get_by_label("When (UTC)").fill(when)
    form.get_by_role("button", name="Schedule").click()
    expect(page.locator(".notice-error")).to_contain_text("Nothing changed")
    assert not ScheduledChange.objects.exists()


def test_savings__quality_beside_savings__kpi_and_breakdown_columns(
    transactional_db, live_server, page, router, viewer_user
):
    from tracking.models import Event
    from tracking.outcome_ingest import record_outcomes

    base = live_server.url
    _events(router)
    # Quality scores for the legal and technical events; medical gets none (its cell: "—").
    scored = Event.objects.filter(router=router, domain__in=["legal", "technical"])
    outcomes = [
        {"event_id": str(e.event_id), "quality": 0.9 if e.domain == "legal" else 0.6}
        for e in scored
    ]
    assert record_outcomes(router_id=router.pk, payload={"outcomes": outcomes}).accepted == 40
    log_in(page, base, "victor", "viewer-pass-123")

    page.goto(f"{base}/routers/checkout/savings/?days=30")

    kpi = page.locator(".kpi-quality")
    expect(kpi).to_contain_text("0.75")
    expect(kpi).to_contain_text("average of 40 scored requests")
    by_domain = page.locator("section", has=page.get_by_role("heading", name="By domain"))
    expect(by_domain.get_by_role("columnheader", name="Quality")).to_be_visible()
    for domain, text in (("legal", "0.90 (20)"), ("technical", "0.60 (20)"), ("medical", "—")):
        row = by_domain.locator("tr", has=page.locator(".breakdown-key", has_text=domain))
        expect(row.locator('[data-label="Quality"]')).to_have_text(text)
    by_model = page.locator("section", has=page.get_by_role("heading", name="By model"))
    expect(by_model.get_by_role("columnheader", name="Quality")).to_be_visible()
    shoot(page, "savings-quality")


def test_guardrail__created_and_edited_in_the_page(
    transactional_db, live_server, page, router, operator_user
):
    from tracking.models import Guardrail

    base = live_server.url
    log_in(page, base, "olivia", "operator-pass-123")
    page.goto(f"{base}/routers/{router.slug}/")
    section = page.locator("#guardrail-section")
    expect(section.locator("#guardrail-status")).to_contain_text("Not set")

    section.get_by_label("Enabled").check()
    section.get_by_label("Min success rate (0–1)").fill("0.9")
    section.get_by_label("Max fallback rate (0–1)").fill("0.3")
    section.get_by_label("Window (minutes)").fill("20")
    section.get_by_label("Min requests").fill("40")
    section.get_by_role("button", name="Save guardrail").click()

    expect(page.locator("#guardrail-section")).to_contain_text("Guardrail saved.")
    expect(page.locator("#guardrail-status")).to_contain_text("Enabled")
    guardrail = Guardrail.objects.get(router=router)
    assert (guardrail.enabled, guardrail.min_success_rate, guardrail.max_fallback_rate) == (
        True,
        0.9,
        0.3,
    )
    assert (guardrail.window_minutes, guardrail.min_requests) == (20, 40)

    # A bad value: the field says why, nothing changes.
    page.locator("#guardrail-section").get_by_label("Min success rate (0–1)").fill("2")
    page.locator("#guardrail-section").get_by_role("button", name="Save guardrail").click()
    expect(page.locator("#id_guardrail_min_success_rate_error")).to_be_visible()
    guardrail.refresh_from_db()
    assert guardrail.min_success_rate == 0.9
    shoot(page, "guardrail-form", sizes=(LAPTOP,))


def test_guardrail__tripped_by_bad_events__banner_with_the_numbers(
    transactional_db, live_server, page, router, operator_user, actor
):
    import json
    import urllib.request

    from tracking.guardrails import set_guardrail
    from tracking.tasks import check_guardrails

    services.set_phase(router=router, phase="monitoring", actor=actor)
    services.set_phase(router=router, phase="single_domain", domain="legal", actor=actor)
    services.set_phase(router=router, phase="full", actor=actor)
    set_guardrail(router=router, actor=actor, enabled=True, min_requests=30, window_minutes=15)
    _, key = services.create_api_key(router=router, role="router", actor=actor)
    now = timezone.now().isoformat()
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "timestamp": now,
            "selected_model": "gpt-3.5-turbo",
            "success": i >= 12,  # 28/40 = 70 % success
            "fallback_used": i < 4,  # 10 % fallbacks
        }
        for i in range(40)
    ]
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["accepted"] == 40

    assert check_guardrails() == 1

    base = live_server.url
    log_in(page, base, "olivia", "operator-pass-123")
    page.goto(f"{base}/routers/{router.slug}/")
    banner = page.locator("#guardrail-tripped")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Guardrail tripped")
    expect(banner).to_contain_text("success rate 0.700 (minimum 0.95)")
    expect(banner).to_contain_text("fallback rate 0.100 (maximum 0.25)")
    expect(banner).to_contain_text("over 40 requests")
    router.refresh_from_db()
    expect(banner).to_contain_text(f"revision #{router.current_revision.number}")
    assert router.current_revision.phase == "single_domain"
    shoot(page, "guardrail-banner", sizes=(LAPTOP,))

    # The operator moves on: the banner goes (the trip stays in the section's history).
    services.set_phase(router=router, phase="full", actor=actor)
    page.reload()
    expect(page.locator("#guardrail-status")).to_contain_text("last tripped")
    expect(page.locator("#guardrail-tripped")).to_have_count(0)


def test_experiment__created_started_compared_concluded_in_the_page(
    transactional_db, live_server, page, dialogs, router, operator_user
):
    from controlplane.models import Experiment

    base = live_server.url
    log_in(page, base, "olivia", "operator-pass-123")
    page.goto(f"{base}/routers/{router.slug}/")
    section = page.locator("#experiments-section")
    expect(section).to_contain_text("No experiments yet.")
    section.get_by_label("Name").fill("higher bar")
    section.get_by_label("Treatment threshold (0–1)").fill("0.4")
    section.get_by_label("Share of keys in treatment (0–1)").fill("0.25")
    section.get_by_role("button", name="Create experiment").click()
    expect(page.locator("#experiments-section")).to_contain_text("Experiment created (draft).")
    experiment = Experiment.objects.get(router=router)

    page.locator(f"#experiment-{experiment.pk}").get_by_role("button", name="Start").click()
    expect(page.locator(f"#experiment-{experiment.pk}")).to_have_attribute("data-status", "running")
    assert dialogs.messages[-1] == "Start higher bar? Routers get it in a new revision."
    row = page.locator(f"#experiment-{experiment.pk} tr[data-metric='success_rate']")
    expect(row).to_contain_text("too few requests to tell")
    router.refresh_from_db()
    assert router.current_revision.experiment == {
        "id": experiment.pk,
        "split": 0.25,
        "treatment_threshold": 0.4,
    }
    shoot(page, "experiment-running", sizes=(LAPTOP,))

    card = page.locator(f"#experiment-{experiment.pk}")
    card.get_by_label("Conclusion").fill("ship it")
    card.get_by_label("Apply the treatment (publish threshold 0.4)").check()
    card.get_by_role("button", name="Conclude").click()
    expect(page.locator(f"#experiment-{experiment.pk}")).to_have_attribute(
        "data-status", "concluded"
    )
    router.refresh_from_db()
    assert router.current_revision.config["threshold"] == 0.4
    assert router.current_revision.experiment is None
