"""The router page's Webhooks section: views, and the "Send test" button in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from controlplane.webhooks.models import WebhookEndpoint
from controlplane.webhooks.signing import verify
from tests.controlplane.test_webhooks import receiver, wait_for, webhook_worker  # noqa: F401
from tests.dashboard.test_browser import browser, dialogs, log_in, page  # noqa: F401

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db
def test_add_endpoint__secret_shown_once(operator_client, router):
    response = operator_client.post(
        "/routers/checkout/webhooks/add/",
        {"url": "https://hooks.example/rp", "event_types": ["kill_switch.engaged"]},
        **HTMX,
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["kill_switch.engaged"]
    assert endpoint.secret in response.content.decode()
    listed = operator_client.get("/routers/checkout/webhooks/", **HTMX).content.decode()
    assert "https://hooks.example/rp" in listed
    assert endpoint.secret not in listed


@pytest.mark.django_db
def test_add_endpoint__bad_url__error_shown_nothing_stored(operator_client, router):
    response = operator_client.post("/routers/checkout/webhooks/add/", {"url": "not a url"}, **HTMX)
    assert "url:" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_viewer__sees_the_list_but_cannot_add(viewer_client, router):
    listed = viewer_client.get("/routers/checkout/webhooks/", **HTMX)
    assert listed.status_code == 200
    assert "Add webhook" not in listed.content.decode()
    refused = viewer_client.post("/routers/checkout/webhooks/add/", {"url": "https://x.example"})
    assert refused.status_code == 403


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_send_test_button__delivery_arrives_signed_and_is_listed(
    page,  # noqa: F811
    live_server,
    operator_user,
    router,
    receiver,  # noqa: F811
    webhook_worker,  # noqa: F811
):
    log_in(page, live_server.url, "olivia", "operator-pass-123")
    page.goto(f"{live_server.url}/routers/checkout/")
    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_role("button", name="Add webhook").click()
    secret = page.locator("#webhook-secret code").inner_text()
    assert secret.startswith("whsec_")

    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("Test event queued.")).to_be_visible()
    wait_for(lambda: receiver.received)
    headers, body, _ = receiver.received[0]
    assert verify(secret, headers["X-Routeplane-Signature"], body)
    # The list refreshes itself: the delivery shows with its status and response time.
    row = page.locator("#webhook-list tbody tr.ok").first
    expect(row.locator("td.status")).to_have_text("200", timeout=15_000)
    expect(row).to_contain_text("webhook.test")
    expect(row).to_contain_text(" ms")
