"""End to end in a real Chromium (Debian's), driven by Playwright, against the live server.

Screenshots of each main page land in test-artifacts/ (gitignored) at laptop and phone widths.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from controlplane import services
from controlplane.actors import Actor
from controlplane.models import AuditEntry

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


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    # Accept every hx-confirm dialog, as an operator clicking OK would.
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size(LAPTOP)
    page.screenshot(path=str(ARTIFACTS / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / f"{name}-390.png"), full_page=True)
    page.set_viewport_size(LAPTOP)


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


def _events(router) -> None:
    from tracking.services import record_events

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
    transactional_db, live_server, page, router, router_key, operator_user, tmp_path, monkeypatch
):
    from routing import FeatureFlags
    from routing.client import FlagsPoller

    # Short long-polls, so no server thread still holds the test database when the test ends.
    monkeypatch.setitem(FlagsPoller.__init__.__kwdefaults__, "wait_seconds", 1)

    base = live_server.url
    other = Actor("user:someone-else", "10.0.0.9")
    services.set_phase(router=router, phase="monitoring", actor=other)  # revision 2
    _events(router)

    flags = FeatureFlags(url=base, api_key=router_key, cache_path=tmp_path / "flags.json")
    try:
        wait_for_revision(flags, 2, timeout=5)
        assert not flags.is_enabled(FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN)

        page.goto(f"{base}/routers/checkout/")
        assert "/login/" in page.url
        shoot(page, "login")
        log_in(page, base, "olivia", "operator-pass-123")
        page.goto(f"{base}/routers/checkout/")
        page.wait_for_url(f"{base}/routers/checkout/")

        # Monitoring -> single domain (technical), one click (plus the confirm).
        page.get_by_label("Domain", exact=True).select_option("technical")
        page.get_by_role("button", name="Advance to Single domain").click()
        page.get_by_text("Now at revision 3").wait_for()
        assert wait_for_revision(flags, 3, timeout=1.0) < 1.0
        assert flags.is_enabled(FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN)
        assert page.locator("#current-revision").inner_text() == "#3"

        # Kill switch, with a reason.
        page.get_by_label("Reason (required, kept in the audit log)").fill("weak model fails tests")
        page.get_by_role("button", name="Engage kill switch").click()
        page.get_by_text("Kill switch engaged: routing is off.").wait_for()
        assert wait_for_revision(flags, 4, timeout=1.0) < 1.0
        assert not flags.is_enabled(FeatureFlags.ROUTELLM_TECHNICAL_DOMAIN)
        assert page.get_by_role("button", name="Release kill switch").is_visible()

        # Roll back to revision 2 from the history.
        page.locator("#revision-2").get_by_role("button", name="Roll back to this").click()
        page.get_by_text("Rolled back to revision 2.").wait_for()
        assert wait_for_revision(flags, 5, timeout=1.0) < 1.0
        assert flags.document()["phase"] == "monitoring"
        assert flags.document()["kill_switch"] is True  # a rollback keeps the kill switch
        shoot(page, "router")
    finally:
        if flags.poller is not None:
            flags.poller.stop()
            time.sleep(1.2)  # the server side of the last long-poll runs out

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
