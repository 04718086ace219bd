"""The router page's A/B experiments section: create, start, report, conclude; viewers read."""

from __future__ import annotations

import pytest

from controlplane.models import Experiment, ExperimentStatus
from tests.tracking.conftest import make_event, post_events

HTMX = {"HTTP_HX_REQUEST": "true"}
BASE = "/routers/checkout/experiments/"


@pytest.mark.django_db
def test_create_start_report_conclude(operator_client, router, router_api):
    created = operator_client.post(
        f"{BASE}add/",
        {
            "name": "bar 0.9",
            "treatment_threshold": "0.9",
            "split": "0.3",
            "ends_at": "2099-01-01T00:00",
        },
        **HTMX,
    )
    assert created.status_code == 200
    experiment = Experiment.objects.get()
    assert (experiment.split, experiment.treatment_threshold) == (0.3, 0.9)
    assert experiment.ends_at.year == 2099

    started = operator_client.post(f"{BASE}{experiment.pk}/start/", **HTMX)
    assert "started" in started.content.decode()
    post_events(router_api, [make_event(ab_group="control") for _ in range(3)])

    page = operator_client.get(BASE, **HTMX).content.decode()
    assert 'data-metric="cost_per_request"' in page
    assert "too few requests to tell" in page

    operator_client.post(
        f"{BASE}{experiment.pk}/conclude/",
        {"conclusion": "raise it", "apply_treatment": "on"},
        **HTMX,
    )
    experiment.refresh_from_db()
    router.refresh_from_db()
    assert experiment.status == ExperimentStatus.CONCLUDED
    assert router.current_revision.config["threshold"] == 0.9
    assert experiment.applied_revision == router.current_revision.number


@pytest.mark.django_db
def test_create__bad_threshold__400_naming_the_field_nothing_stored(operator_client, router):
    response = operator_client.post(
        f"{BASE}add/", {"name": "x", "treatment_threshold": "high"}, **HTMX
    )
    assert response.status_code == 400
    assert "treatment_threshold:" in response.content.decode()
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_viewer__reads__cannot_create(viewer_client, router):
    assert "No experiments yet" in viewer_client.get(BASE, **HTMX).content.decode()
    response = viewer_client.post(f"{BASE}add/", {"name": "x", "treatment_threshold": "0.2"})
    assert response.status_code == 403
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_router_page__loads_the_section(operator_client, router):
    page = operator_client.get("/routers/checkout/").content.decode()
    assert 'hx-get="/routers/checkout/experiments/"' in page
