"""The A/B report over posted events: per-arm figures, intervals, "too small to tell", and the
experiment API (viewers read, operators write)."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from controlplane.experiments import create_experiment, start_experiment
from controlplane.models import Experiment
from tests.tracking.conftest import make_event, post_events
from tracking.experiment_report import MIN_PER_ARM, experiment_report


def _arm_events(arm: str, n: int, *, cost: float, failures: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        make_event(
            ab_group=arm,
            estimated_cost=round(cost * rng.uniform(0.5, 1.5), 6),
            latency_ms=float(rng.randint(50, 500)),
            success=i >= failures,
            fallback_used=i < failures // 2,
        )
        for i in range(n)
    ]


@pytest.fixture
def running(router, actor):
    experiment = create_experiment(
        router=router, name="cheaper", treatment_threshold=0.8, split=0.5, actor=actor
    )
    start_experiment(experiment=experiment, actor=actor)
    experiment.refresh_from_db()
    return experiment


def _comparison(report: dict, metric: str) -> dict:
    (row,) = [row for row in report["comparisons"] if row["metric"] == metric]
    return row


def test_report__figures_and_welch_interval_match_the_raw_events(router_api, running):
    control = _arm_events("control", 400, cost=0.02, failures=20, seed=1)
    treatment = _arm_events("treatment", 300, cost=0.01, failures=60, seed=2)
    for batch in (control, treatment, [make_event(estimated_cost=9.0)]):  # untagged: ignored
        assert post_events(router_api, batch).json()["accepted"] == len(batch)

    report = experiment_report(experiment=Experiment.objects.get(pk=running.pk))

    arms = report["arms"]
    assert arms["control"]["requests"] == 400 and arms["treatment"]["requests"] == 300
    assert arms["treatment"]["success_rate"] == pytest.approx(240 / 300)
    assert arms["control"]["fallback_rate"] == pytest.approx(10 / 400)
    costs = {
        arm: [e["estimated_cost"] for e in events]
        for arm, events in (("control", control), ("treatment", treatment))
    }
    cost = _comparison(report, "cost_per_request")
    se = math.sqrt(
        statistics.variance(costs["treatment"]) / 300 + statistics.variance(costs["control"]) / 400
    )
    difference = statistics.fmean(costs["treatment"]) - statistics.fmean(costs["control"])
    assert cost["difference"] == pytest.approx(difference)
    assert cost["ci_low"] == pytest.approx(difference - 1.959964 * se, rel=1e-5)
    assert cost["ci_high"] == pytest.approx(difference + 1.959964 * se, rel=1e-5)
    assert cost["conclusive"] and cost["verdict"] == "treatment lower (better)"
    success = _comparison(report, "success_rate")
    assert success["conclusive"] and success["verdict"] == "treatment lower (worse)"
    latencies = sorted(e["latency_ms"] for e in control)
    assert arms["control"]["latency_p95_ms"] == latencies[math.ceil(400 * 0.95) - 1]
    assert _comparison(report, "latency_p95_ms")["conclusive"] is False  # same distribution
    assert report["conclusive"] is True


def test_report__few_requests__says_too_few_to_tell(router_api, running):
    post_events(router_api, _arm_events("control", 30, cost=0.02, failures=0, seed=3))
    post_events(router_api, _arm_events("treatment", 30, cost=0.001, failures=29, seed=4))

    report = experiment_report(experiment=running)

    assert report["conclusive"] is False
    for row in report["comparisons"]:
        if row["metric"] != "average_quality":
            assert row["verdict"].startswith(
                f"too few requests to tell (each arm needs at least {MIN_PER_ARM}"
            )


def test_api__operator_creates_starts_reads_and_concludes(operator_api, viewer_api, router):
    created = operator_api.post(
        "/api/v1/routers/checkout/experiments",
        {"name": "t", "treatment_threshold": 0.4, "split": 0.25},
        format="json",
    )
    assert created.status_code == 201, created.content
    experiment_id = created.json()["id"]
    base = f"/api/v1/routers/checkout/experiments/{experiment_id}"
    assert viewer_api.post(f"{base}/start", {}, format="json").status_code == 403
    started = operator_api.post(f"{base}/start", {}, format="json")
    assert started.status_code == 200 and started.json()["status"] == "running"

    read = viewer_api.get(base).json()
    assert read["experiment"]["status"] == "running"
    assert {row["metric"] for row in read["comparisons"]} == {
        "cost_per_request",
        "success_rate",
        "fallback_rate",
        "average_quality",
        "latency_p95_ms",
    }
    assert [e["id"] for e in viewer_api.get("/api/v1/routers/checkout/experiments").json()] == [
        experiment_id
    ]
    concluded = operator_api.post(
        f"{base}/conclude", {"conclusion": "ship it", "apply_treatment": True}, format="json"
    )
    assert concluded.status_code == 200 and concluded.json()["applied_revision"] >= 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "t", "treatment_threshold": "0.4"}, "treatment_threshold"),
        ({"name": "t", "treatment_threshold": 1.4}, "treatment_threshold"),
        ({"name": "t", "treatment_threshold": 0.4, "split": -1}, "split"),
        ({"treatment_threshold": 0.4}, "name"),
    ],
)
def test_api__bad_input__400_naming_the_field(operator_api, router, body, field):
    response = operator_api.post("/api/v1/routers/checkout/experiments", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_api__conclude_without_conclusion__400(operator_api, router, running):
    response = operator_api.post(
        f"/api/v1/routers/checkout/experiments/{running.pk}/conclude",
        {"apply_treatment": "yes"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"apply_treatment"}
