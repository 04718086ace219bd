"""GET /metrics: who may scrape it, and counters summed over two uvicorn workers."""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controlplane import services
from tests.servers import app_env, test_database_url, uvicorn_server
from tests.tracking.conftest import make_event


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.django_db
def test_metrics__without_a_token__401(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_metrics__router_or_viewer_key__401(client, router_key, viewer_key):
    for key in (router_key, viewer_key):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 401


@pytest.mark.django_db
def test_metrics__operator_key__parses(client, operator_key, router):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {operator_key}")
    assert response.status_code == 200
    samples = parse(response.content.decode())
    assert samples[("routeplane_router_requests_today", (("router", "checkout"),))] == 0
    assert ("routeplane_flags_not_modified_share", ()) in samples


@pytest.mark.django_db
def test_metrics__metrics_token__accepted_and_wrong_token_refused(client, settings, router):
    settings.ROUTEPLANE_METRICS_TOKEN = "scrape-me-please"
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-please")
    assert ok.status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 401


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_metrics__two_workers__counters_summed_over_both(
    router, router_key, operator_key, actor, tmp_path
):
    env = app_env(
        test_database_url(),
        os.environ["REDIS_URL"],
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        ROUTEPLANE_METRICS_CACHE_SECONDS="0",
    )
    router_auth = {"Authorization": f"Bearer {router_key}"}
    with uvicorn_server(env, workers=2) as (base, _process):

        def scrape() -> dict[tuple[str, tuple], float]:
            # A new connection each time: either worker may answer.
            response = httpx.get(
                f"{base}/metrics", headers={"Authorization": f"Bearer {operator_key}"}
            )
            assert response.status_code == 200
            return parse(response.text)

        first = httpx.get(f"{base}/api/v1/flags", headers=router_auth)
        assert first.status_code == 200
        etag = first.headers["etag"]
        for _ in range(20):
            assert httpx.get(f"{base}/api/v1/flags", headers=router_auth).status_code == 200
        for _ in range(30):
            response = httpx.get(
                f"{base}/api/v1/flags", headers={**router_auth, "If-None-Match": etag}
            )
            assert response.status_code == 304

        strong = [make_event(selected_model="gpt-4-1106-preview") for _ in range(2)]
        batch = strong + [make_event() for _ in range(3)]
        accepted = httpx.post(f"{base}/api/v1/events", json={"events": batch}, headers=router_auth)
        assert accepted.json() == {"accepted": 5, "duplicates": 0, "rejected": []}
        again = httpx.post(
            f"{base}/api/v1/events", json={"events": [*batch, {"nope": 1}]}, headers=router_auth
        )
        assert again.json()["duplicates"] == 5
        assert len(again.json()["rejected"]) == 1

        scrapes = [scrape() for _ in range(6)]
        for samples in scrapes:  # every worker answers with the sum of both
            assert flags_from(samples, "200") == 21
            assert flags_from(samples, "304") == 30
            assert samples[("routeplane_flags_not_modified_share", ())] == pytest.approx(30 / 51)
            assert samples[("routeplane_events_total", (("outcome", "accepted"),))] == 5
            assert samples[("routeplane_events_total", (("outcome", "duplicate"),))] == 5
            assert samples[("routeplane_events_total", (("outcome", "rejected"),))] == 1
            router_label = (("router", "checkout"),)
            assert samples[("routeplane_router_requests_today", router_label)] == 5
            assert samples[("routeplane_router_strong_share_today", router_label)] == 0.4
            assert samples[("routeplane_ingest_lag_seconds", ())] >= 0

        # A parked long-poll shows as a waiter; a revision wakes it and is timed.
        answer: dict[str, int] = {}

        def long_poll() -> None:
            response = httpx.get(
                f"{base}/api/v1/flags?wait=30",
                headers={**router_auth, "If-None-Match": etag},
                timeout=40,
            )
            answer["status"] = response.status_code

        poller = threading.Thread(target=long_poll)
        poller.start()
        deadline = time.monotonic() + 10
        while scrape()[("routeplane_flags_long_poll_waiters", ())] != 1:
            assert time.monotonic() < deadline, "the long-poll never showed as a waiter"
            time.sleep(0.05)
        services.set_flag(router=router, name="routellm_cost_tracking", enabled=True, actor=actor)
        poller.join(35)
        assert answer["status"] == 200
        deadline = time.monotonic() + 10
        while scrape()[("routeplane_flags_propagation_seconds_count", ())] < 2:
            assert time.monotonic() < deadline, "each worker times the new revision once"
            time.sleep(0.05)
        samples = scrape()
        assert samples[("routeplane_flags_propagation_seconds_count", ())] == 2
        assert samples[("routeplane_flags_long_poll_waiters", ())] == 0
        assert flags_from(samples, "200") == 22


def flags_from(samples: dict[tuple[str, tuple], float], status: str) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "routeplane_flags_requests_total" and ("status", status) in labels
    )
