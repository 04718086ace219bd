"""The router page's guardrail section (form) and trip banner, through Django's test client."""

from __future__ import annotations

import pytest

from controlplane.models import AuditEntry
from tracking.models import Guardrail

HTMX = {"HTTP_HX_REQUEST": "true"}
SAVE = "/routers/checkout/guardrail/save/"
VALUES = {
    "enabled": "on",
    "min_success_rate": "0.9",
    "max_fallback_rate": "0.2",
    "window_minutes": "10",
    "min_requests": "50",
}


@pytest.mark.django_db
def test_section__not_set__defaults_in_the_form(operator_client, router):
    page = operator_client.get("/routers/checkout/guardrail/", **HTMX).content.decode()
    assert "Not set" in page
    assert 'name="min_success_rate"' in page and 'value="0.95"' in page


@pytest.mark.django_db
def test_save__creates_then_edits__audited(operator_client, router):
    response = operator_client.post(SAVE, VALUES, **HTMX)
    assert response.status_code == 200
    assert "Guardrail saved." in response.content.decode()
    guardrail = Guardrail.objects.get(router=router)
    assert (guardrail.enabled, guardrail.min_success_rate, guardrail.min_requests) == (
        True,
        0.9,
        50,
    )

    operator_client.post(SAVE, {**VALUES, "enabled": "", "window_minutes": "30"}, **HTMX)
    guardrail.refresh_from_db()
    assert (guardrail.enabled, guardrail.window_minutes) == (False, 30)
    assert AuditEntry.objects.filter(router=router, action="guardrail.set").count() == 2


@pytest.mark.django_db
def test_save__bad_rate__400_field_error_nothing_stored(operator_client, router):
    response = operator_client.post(SAVE, {**VALUES, "min_success_rate": "1.5"}, **HTMX)
    assert response.status_code == 400
    assert 'id="id_guardrail_min_success_rate_error"' in response.content.decode()
    assert not Guardrail.objects.exists()


@pytest.mark.django_db
def test_viewer__sees_the_form_disabled__cannot_save(viewer_client, router):
    page = viewer_client.get("/routers/checkout/guardrail/", **HTMX).content.decode()
    assert "Viewers cannot change routers." in page
    assert viewer_client.post(SAVE, VALUES, **HTMX).status_code == 403
    assert not Guardrail.objects.exists()


@pytest.mark.django_db
def test_banner__empty_until_tripped(operator_client, router):
    page = operator_client.get("/routers/checkout/guardrail/banner/", **HTMX).content.decode()
    assert 'id="guardrail-banner"' in page and "Guardrail tripped" not in page
