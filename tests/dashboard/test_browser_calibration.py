# ruff: noqa: F811 (pytest fixtures imported from test_browser are parameters here)
"""The Calibrate panel in a real Chromium: calibrate-and-apply, and the what-if slider."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from tests.dashboard.test_browser import browser, dialogs, log_in, page  # noqa: F401 (fixtures)
from tests.tracking.winrate_events import beta_rates, ingest_and_fold, routed_events

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(autouse=True)
def short_lived_connections():
    from django.db import connections

    settings_dict = connections.settings["default"]
    old = settings_dict.get("CONN_MAX_AGE", 0)
    settings_dict["CONN_MAX_AGE"] = 0
    yield
    settings_dict["CONN_MAX_AGE"] = old


@pytest.fixture
def traffic(router, settings):
    settings.ROUTEPLANE_CALIBRATION_MIN_SAMPLE = 100
    rates = beta_rates(500, 2, 5, seed=31)
    ingest_and_fold(router, routed_events(rates, threshold=0.3, domain="legal"))
    return rates


def test_calibrate_and_apply__confirmed_then_a_new_revision(
    transactional_db,
    live_server,
    page,
    dialogs,
    router,
    operator_user,
    traffic,
):
    log_in(page, live_server.url, "olivia", "operator-pass-123")
    page.goto(f"{live_server.url}/routers/checkout/")
    panel = page.locator("#calibration")
    expect(panel.locator("#calibration-sample")).to_contain_text("500 calls with a win rate")
    panel.get_by_label("Target strong share").fill("0.25")
    panel.get_by_role("button", name="Update").click()
    proposed = panel.locator("#calibration-proposed")
    expect(panel.locator("#calibration-observed")).to_contain_text("target 25 %")
    threshold = proposed.inner_text()

    panel.get_by_role("button", name="Apply threshold").click()

    dialogs.wait_for(page, f"Set Checkout router's threshold to {threshold}? It becomes a new "
                     "revision.")  # fmt: skip
    expect(page.locator("#current-revision")).to_have_text("#2")
    expect(page.locator(".messages")).to_contain_text(f"Threshold set to {threshold}")
    router.refresh_from_db()
    assert router.current_revision.config["threshold"] == float(threshold)
    assert abs(sum(r >= float(threshold) for r in traffic) / 500 - 0.25) <= 0.02


def test_what_if__typing_a_threshold_updates_the_prediction(
    transactional_db,
    live_server,
    page,
    router,
    operator_user,
    traffic,
):
    log_in(page, live_server.url, "olivia", "operator-pass-123")
    page.goto(f"{live_server.url}/routers/checkout/")
    observed = f"{sum(r >= 0.3 for r in traffic) / 500:.3f}"
    expect(page.locator("#what-if-observed-share")).to_have_text(observed)

    page.locator("#what-if-threshold").fill("0.3")
    expect(page.locator("#what-if-predicted-share")).to_have_text(observed)  # as it happened
    page.locator("#what-if-threshold").fill("0.5")
    expect(page.locator("#what-if-predicted-share")).to_have_text(
        f"{sum(r >= 0.5 for r in traffic) / 500:.3f}"
    )
    assert float(page.locator("#what-if-predicted-share").inner_text()) < float(observed)
