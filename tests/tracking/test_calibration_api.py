"""GET routers/{slug}/calibration and POST routers/{slug}/calibration/apply."""

from __future__ import annotations

import pytest

from tests.tracking.winrate_events import beta_rates, ingest_and_fold, routed_events

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/routers/checkout/calibration"


@pytest.fixture
def traffic(router, settings):
    settings.ROUTEPLANE_CALIBRATION_MIN_SAMPLE = 200
    rates = beta_rates(600, 2, 5, seed=11)
    ingest_and_fold(router, routed_events(rates, threshold=0.25, domain="legal"))
    return rates


def test_get__viewer_sees_proposal_sample_and_current_figures(viewer_api, traffic):
    response = viewer_api.get(URL, {"days": 3, "target_strong_share": 0.4})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["sample_size"] == 600 and body["min_sample"] == 200 and body["days"] == 3
    assert body["current_threshold"] == 0.11593 and body["refusal"] == ""
    assert body["observed_strong_share"] == pytest.approx(sum(r >= 0.25 for r in traffic) / 600)
    assert abs(sum(r >= body["proposed_threshold"] for r in traffic) / 600 - 0.4) <= 0.02
    # Default target: 1 - cost_optimization_target (0.5).
    assert viewer_api.get(URL).json()["target_strong_share"] == 0.5


def test_get__refuses_below_the_minimum_sample(viewer_api, traffic):
    body = viewer_api.get(URL, {"domain": "medical"}).json()
    assert body["proposed_threshold"] is None and body["sample_size"] == 0
    assert "calibration needs at least 200" in body["refusal"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"days": "0"}, "days"), ({"days": "x"}, "days"), ({"target_strong_share": "2"},
     "target_strong_share"), ({"domain": "x" * 65}, "domain")],
)  # fmt: skip
def test_get__bad_input_is_a_400_naming_the_field(viewer_api, router, params, field):
    response = viewer_api.get(URL, params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_apply__operator_publishes_with_if_match(operator_api, viewer_api, router, traffic):
    current = router.current_revision.number
    body = {"days": 2, "target_strong_share": 0.3}
    assert viewer_api.post(f"{URL}/apply", body, format="json").status_code == 403
    stale = operator_api.post(f"{URL}/apply", body, format="json", HTTP_IF_MATCH='"99"')
    assert stale.status_code == 412

    response = operator_api.post(f"{URL}/apply", body, format="json", HTTP_IF_MATCH=f'"{current}"')

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["revision"] == current + 1 and response["ETag"] == f'"{current + 1}"'
    assert data["config"]["threshold"] == data["calibration"]["proposed_threshold"]
    assert abs(sum(r >= data["config"]["threshold"] for r in traffic) / 600 - 0.3) <= 0.02


def test_apply__refused_below_minimum_sample_or_for_an_unknown_domain(operator_api, traffic):
    few = operator_api.post(f"{URL}/apply", {"domain": "medical"}, format="json")
    assert few.status_code == 400 and "at least 200" in few.json()["errors"]["days"][0]
    unknown = operator_api.post(f"{URL}/apply", {"domain": "general"}, format="json")
    assert unknown.status_code == 400 and "domain" in unknown.json()["errors"]
