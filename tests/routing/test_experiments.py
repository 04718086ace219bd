"""A/B arms: sticky per (experiment, key), split as configured, behind the A/B flag."""

from __future__ import annotations

import asyncio

from routing.domain_router import DomainRouter
from routing.evaluation import document_errors, safe_default_document
from routing.experiments import CONTROL, TREATMENT, arm_for, experiment_arm
from tests.routing.doubles import DocumentFlags, RecordingTracker
from tests.routing.test_domain_router_live import fake_controller, live_document  # noqa: F401

# chi-square with 1 degree of freedom: P(X > 10.828) = 0.001.
CHI2_1DF_P001 = 10.828


def _chi_square(treatment: int, total: int, split: float) -> float:
    expected = (total * split, total * (1 - split))
    observed = (treatment, total - treatment)
    return sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))


def test_arms__split_as_configured__chi_square_on_100k_keys():
    for split in (0.5, 0.1, 0.37):
        experiment = {"id": 7, "split": split, "treatment_threshold": 0.3}
        treatment = sum(arm_for(experiment, f"user-{i}") == TREATMENT for i in range(100_000))
        assert _chi_square(treatment, 100_000, split) < CHI2_1DF_P001, (split, treatment)


def test_arms__sticky_per_key__independent_across_experiments():
    first = {"id": 1, "split": 0.5, "treatment_threshold": 0.3}
    again = dict(first)
    other = {"id": 2, "split": 0.5, "treatment_threshold": 0.3}
    keys = [f"k{i}" for i in range(2000)]
    arms = [arm_for(first, key) for key in keys]
    assert arms == [arm_for(again, key) for key in keys]
    # A new experiment reshuffles: about half the keys change arm, not none or all.
    changed = sum(a != arm_for(other, k) for a, k in zip(arms, keys, strict=True))
    assert 800 < changed < 1200


def test_arms__split_edges():
    keys = [f"k{i}" for i in range(500)]
    assert {arm_for({"id": 3, "split": 0.0, "treatment_threshold": 0}, k) for k in keys} == {
        CONTROL
    }
    assert {arm_for({"id": 3, "split": 1.0, "treatment_threshold": 0}, k) for k in keys} == {
        TREATMENT
    }


def _document(flag_percent: int, split: float = 0.5) -> dict:
    document = live_document(threshold=0.5)
    document["flags"]["routellm_a_b_testing"] = {
        "enabled": flag_percent > 0,
        "rollout_percent": flag_percent,
    }
    document["experiment"] = {"id": 11, "split": split, "treatment_threshold": 0.9}
    return document


def test_experiment_arm__needs_the_flag_and_an_experiment():
    assert experiment_arm(_document(0), "key") == (None, None)
    no_experiment = _document(100) | {"experiment": None}
    assert experiment_arm(no_experiment, "key") == (None, None)
    assert experiment_arm(_document(100, split=1.0), "key") == (TREATMENT, 0.9)
    assert experiment_arm(_document(100, split=0.0), "key") == (CONTROL, None)


def test_domain_router__treatment_keys_use_the_treatment_threshold_and_carry_the_arm():
    # The fake controller's win rate is 0.75: strong under 0.5 (control), weak under 0.9.
    tracker = RecordingTracker()
    router = DomainRouter(flags=DocumentFlags(_document(100)), tracker=tracker)
    experiment = _document(100)["experiment"]
    for i in range(40):
        key = f"user-{i}"
        decision = asyncio.run(router.route_by_domain("hello", key=key))
        arm = arm_for(experiment, key)
        assert decision.ab_group == arm
        assert decision.threshold == (0.9 if arm == TREATMENT else 0.5)
        assert decision.tier == ("weak" if arm == TREATMENT else "strong")
        assert tracker.calls[-1]["ab_group"] == arm


def test_domain_router__flag_off__no_arm_config_threshold():
    tracker = RecordingTracker()
    router = DomainRouter(flags=DocumentFlags(_document(0, split=1.0)), tracker=tracker)
    decision = asyncio.run(router.route_by_domain("hello", key="k"))
    assert decision.ab_group is None and decision.threshold == 0.5
    assert tracker.calls[-1]["ab_group"] is None


def test_document_errors__bad_experiment_entry_rejects_the_document():
    document = safe_default_document()
    assert document_errors(document) == []
    document["experiment"] = {"id": 0, "split": 2, "treatment_threshold": "x"}
    assert document_errors(document) == [
        "experiment.id: must be an integer >= 1",
        "experiment.split: must be a number between 0 and 1",
        "experiment.treatment_threshold: must be a number between 0 and 1",
    ]
