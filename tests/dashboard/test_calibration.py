"""The router page's Calibrate panel: proposal, apply, what-if, dynamic-threshold status."""

from __future__ import annotations

import pytest

from controlplane.models import AuditEntry
from tests.tracking.winrate_events import beta_rates, ingest_and_fold, routed_events

pytestmark = pytest.mark.django_db(transaction=True)
PANEL = "/routers/checkout/calibration/"


@pytest.fixture
def traffic(router, settings):
    settings.ROUTEPLANE_CALIBRATION_MIN_SAMPLE = 100
    rates = beta_rates(400, 2, 5, seed=21)
    ingest_and_fold(router, routed_events(rates, threshold=0.3, domain="legal"))
    return rates


def test_router_page__includes_the_panel_shell(operator_client, router):
    page = operator_client.get("/routers/checkout/").content.decode()
    assert 'id="calibration"' in page and 'hx-get="/routers/checkout/calibration/"' in page


def test_panel__shows_proposal_sample_and_observed_against_target(viewer_client, traffic):
    body = viewer_client.get(PANEL, {"target_strong_share": "0.4"}, HTTP_HX_REQUEST="true")
    html = body.content.decode()

    assert body.status_code == 200
    assert "400 calls with a win rate" in html and "minimum 100" in html
    assert 'id="calibration-proposed"' in html
    assert "target 40 %" in html
    assert 'id="calibration-apply" disabled' in html  # viewers see it, cannot use it
    assert "hx-confirm=\"Set Checkout router's threshold to " in html


def test_panel__below_minimum_sample_says_why_and_offers_no_apply(operator_client, traffic):
    html = operator_client.get(PANEL, {"domain": "medical"}).content.decode()
    assert "Only 0 calls with a win rate for domain medical" in html
    assert "calibration-apply" not in html


def test_apply__publishes_an_audited_revision_and_reloads_the_page(
    operator_client, router, traffic
):
    number = router.current_revision.number
    response = operator_client.post(
        f"{PANEL}apply/",
        {"days": "7", "target_strong_share": "0.25", "domain": "", "expected_revision": number},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200 and response["HX-Redirect"] == "/routers/checkout/"
    router.refresh_from_db()
    revision = router.current_revision
    assert revision.number == number + 1 and revision.actor == "user:olivia"
    assert abs(sum(r >= revision.config["threshold"] for r in traffic) / 400 - 0.25) <= 0.02
    assert AuditEntry.objects.filter(router=router, revision_number=revision.number).exists()


def test_apply__stale_revision_is_refused_in_the_panel(operator_client, router, traffic):
    response = operator_client.post(
        f"{PANEL}apply/", {"days": "7", "expected_revision": 99}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert "Someone else changed this router" in response.content.decode()
    assert router.revisions.count() == 1


def test_apply__viewer_is_forbidden(viewer_client, router, traffic):
    assert viewer_client.post(f"{PANEL}apply/", {"days": "7"}).status_code == 403
    assert router.revisions.count() == 1


def test_what_if__answers_the_prediction_for_the_threshold(viewer_client, traffic):
    html = viewer_client.get(
        "/routers/checkout/what-if/", {"threshold": "0.3", "days": "7"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    share = f"{sum(r >= 0.3 for r in traffic) / 400:.3f}"
    assert html.startswith('\n<div id="what-if-result"') or 'id="what-if-result"' in html[:80]
    assert f'id="what-if-observed-share">{share}<' in html
    assert f'id="what-if-predicted-share">{share}<' in html  # the used threshold: as observed


def test_flag_help__says_what_the_dynamic_threshold_does(operator_client, router):
    html = operator_client.get("/routers/checkout/").content.decode()
    assert "a scheduled job (the calibrator) publishes threshold revisions" in html
