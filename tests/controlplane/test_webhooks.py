"""Webhooks: signing, the outbox, the API, and real deliveries by a Celery worker."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from controlplane import services
from controlplane.models import AuditEntry
from controlplane.webhooks import services as webhook_services
from controlplane.webhooks.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from controlplane.webhooks.signing import signature_header, verify
from tests.servers import celery_worker_process, test_database_url


class Receiver:
    """A webhook receiver on loopback that answers `status` and keeps what it got."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes, float]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body, time.monotonic()))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# --- signing -------------------------------------------------------------------------------


def test_signature__verifies_and_rejects_tampering_and_old_timestamps():
    body = b'{"id": "x"}'
    header = signature_header("whsec_abc", body, timestamp=1_700_000_000)
    assert verify("whsec_abc", header, body, now=1_700_000_010)
    assert not verify("whsec_abc", header, body + b" ", now=1_700_000_010)
    assert not verify("whsec_other", header, body, now=1_700_000_010)
    assert not verify("whsec_abc", header, body, now=1_700_000_000 + 301)
    assert not verify("whsec_abc", "garbage", body)


# --- outbox --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_kill_switch__queues_one_delivery_per_subscribed_enabled_endpoint(router, actor):
    kill = webhook_services.create_endpoint(
        router=router, url="https://a.example/h", event_types=["kill_switch.engaged"], actor=actor
    )
    webhook_services.create_endpoint(
        router=router, url="https://b.example/h", event_types=["phase.changed"], actor=actor
    )
    webhook_services.create_endpoint(
        router=router, url="https://c.example/h", enabled=False, actor=actor
    )
    services.set_kill_switch(router=router, engaged=True, reason="bad answers", actor=actor)

    event = WebhookEvent.objects.get(type="kill_switch.engaged")
    assert event.data["reason"] == "bad answers"
    assert event.data["kill_switch"] is True
    assert [d.endpoint_id for d in WebhookDelivery.objects.filter(event=event)] == [kill.pk]


@pytest.mark.django_db
def test_phase_change_and_rollback__emit_their_events(router, actor):
    services.set_phase(router=router, phase="monitoring", actor=actor)
    services.rollback_to(router=router, number=1, actor=actor)
    assert list(WebhookEvent.objects.order_by("created_at").values_list("type", flat=True)) == [
        "phase.changed",
        "revision.rolled_back",
    ]
    assert WebhookEvent.objects.get(type="phase.changed").data["previous_phase"] == "disabled"


# --- API -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api__operator_creates__secret_shown_once__viewer_reads(operator_api, viewer_api):
    created = operator_api.post(
        "/api/v1/routers/checkout/webhooks",
        {"url": "https://hooks.example/rp", "event_types": ["guardrail.tripped"]},
        format="json",
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    listed = viewer_api.get("/api/v1/routers/checkout/webhooks").json()
    assert [e["url"] for e in listed] == ["https://hooks.example/rp"]
    assert "secret" not in listed[0]
    assert listed[0]["secret_prefix"] == secret[:10]
    assert WebhookEndpoint.objects.get().secret == secret  # kept: signing needs it


@pytest.mark.django_db
def test_api__viewer_cannot_write(viewer_api):
    response = viewer_api.post(
        "/api/v1/routers/checkout/webhooks", {"url": "https://x.example"}, format="json"
    )
    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://x.example"}, "url"),
        ({"url": 5}, "url"),
        ({"url": "https://x.example", "event_types": ["nope"]}, "event_types"),
        ({"url": "https://x.example", "event_types": "kill_switch.engaged"}, "event_types"),
        ({"url": "https://x.example", "enabled": "yes"}, "enabled"),
    ],
)
def test_api__bad_input__400_naming_the_field(operator_api, body, field):
    response = operator_api.post("/api/v1/routers/checkout/webhooks", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_api__patch_and_delete__audited(operator_api, router):
    created = operator_api.post(
        "/api/v1/routers/checkout/webhooks", {"url": "https://x.example/h"}, format="json"
    ).json()
    path = f"/api/v1/routers/checkout/webhooks/{created['id']}"
    patched = operator_api.patch(path, {"enabled": False}, format="json")
    assert patched.json()["enabled"] is False
    assert operator_api.delete(path).status_code == 204
    assert operator_api.get(path).status_code == 404
    actions = set(AuditEntry.objects.filter(router=router).values_list("action", flat=True))
    assert {"webhook.create", "webhook.update", "webhook.delete"} <= actions


# --- real deliveries -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def webhook_worker(django_db_setup, django_db_blocker) -> Iterator[None]:
    """A real Celery worker with quick retries: 3 attempts, 0.5 s then 1 s apart."""
    quick = {"ROUTEPLANE_WEBHOOK_MAX_ATTEMPTS": "3", "ROUTEPLANE_WEBHOOK_BACKOFF_SECONDS": "0.5"}
    saved = {key: os.environ.get(key) for key in quick}
    os.environ.update(quick)
    try:
        with django_db_blocker.unblock():
            url = test_database_url()
        with celery_worker_process(url):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_kill_switch_via_api__receiver_gets_a_signed_delivery(
    webhook_worker, operator_api, receiver
):
    created = operator_api.post(
        "/api/v1/routers/checkout/webhooks",
        {"url": receiver.url, "event_types": ["kill_switch.engaged"]},
        format="json",
    ).json()
    answer = operator_api.post(
        "/api/v1/routers/checkout/kill-switch",
        {"engaged": True, "reason": "incident 42"},
        format="json",
    )
    assert answer.status_code == 200

    wait_for(lambda: receiver.received)
    headers, body, _ = receiver.received[0]
    assert verify(created["secret"], headers["X-Routeplane-Signature"], body)
    payload = json.loads(body)
    assert payload["type"] == "kill_switch.engaged"
    assert payload["router"] == "checkout"
    assert payload["data"]["reason"] == "incident 42"
    assert set(payload) == {"id", "type", "router", "created_at", "data"}
    wait_for(lambda: WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED).exists())
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 200
    assert attempt.succeeded and attempt.response_ms > 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_failing_receiver__retried_with_backoff_then_marked_failed(
    webhook_worker, operator_api, receiver
):
    receiver.status = 500
    created = operator_api.post(
        "/api/v1/routers/checkout/webhooks", {"url": receiver.url}, format="json"
    ).json()
    sent = operator_api.post(f"/api/v1/routers/checkout/webhooks/{created['id']}/test")
    assert sent.status_code == 202

    wait_for(lambda: WebhookDelivery.objects.filter(state=DeliveryState.FAILED).exists())
    assert len(receiver.received) == 3
    times = [moment for _, _, moment in receiver.received]
    assert times[1] - times[0] >= 0.5  # backoff: 0.5 s, then 1 s
    assert times[2] - times[1] >= 1.0
    attempts = list(WebhookAttempt.objects.order_by("number"))
    assert [a.number for a in attempts] == [1, 2, 3]
    assert all(a.status_code == 500 and not a.succeeded for a in attempts)
    log = operator_api.get(f"/api/v1/routers/checkout/webhooks/{created['id']}/deliveries").json()
    assert [row["attempt"] for row in log] == [3, 2, 1]
    assert log[0]["delivery_state"] == "failed"
    assert log[0]["event_type"] == "webhook.test"


def test_api__unknown_body_keys__ignored_not_a_server_error(operator_api, router):
    # Found by schemathesis: extra keys reached the service as keyword arguments (a 500).
    body = {"url": "https://hooks.example/x", "enabled": True, "nonsense": {"a": 1}, "": []}
    created = operator_api.post(f"/api/v1/routers/{router.slug}/webhooks", body, format="json")
    assert created.status_code == 201, created.content
    endpoint_id = created.json()["id"]
    patched = operator_api.patch(
        f"/api/v1/routers/{router.slug}/webhooks/{endpoint_id}",
        {"enabled": False, "nonsense": 1},
        format="json",
    )
    assert patched.status_code == 200 and patched.json()["enabled"] is False
