"""Dynamic threshold: the calibrator's run publishes one audited, rollbackable revision within
its bounds, step and minimum sample, and a polling SDK sees it within a second."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from controlplane import services
from controlplane.actors import Actor
from controlplane.models import ApiKey, AuditEntry
from controlplane.webhooks.models import WebhookEvent
from tests.tracking.winrate_events import beta_rates, ingest_and_fold, routed_events
from tracking import tasks
from tracking.dynamic_threshold import SCHEDULE_NAME, dynamic_threshold_status, recalibrate_router
from tracking.models import CalibrationRun

pytestmark = pytest.mark.django_db(transaction=True)
OPERATOR = Actor("user:test-operator")


@pytest.fixture
def guard_rails(settings):
    settings.ROUTEPLANE_CALIBRATION_MIN_SAMPLE = 300
    settings.ROUTEPLANE_DYNAMIC_THRESHOLD_MIN = 0.05
    settings.ROUTEPLANE_DYNAMIC_THRESHOLD_MAX = 0.6
    settings.ROUTEPLANE_DYNAMIC_THRESHOLD_MAX_STEP = 0.05
    return settings


def turn_on(router) -> None:
    services.set_flag(router=router, name="routellm_dynamic_threshold", enabled=True,
                      rollout_percent=100, actor=OPERATOR)  # fmt: skip
    router.refresh_from_db()


def test_run__flag_off_or_partial__publishes_nothing(router, guard_rails):
    ingest_and_fold(router, routed_events(beta_rates(500, 2, 5), threshold=0.11593))
    services.set_flag(router=router, name="routellm_dynamic_threshold", enabled=True,
                      rollout_percent=50, actor=OPERATOR)  # fmt: skip
    revisions = router.revisions.count()

    assert tasks.recalibrate_thresholds() == 0
    run = recalibrate_router(router=router)
    assert run.outcome == "skipped" and "not on at 100 %" in run.summary
    assert router.revisions.count() == revisions


def test_run__one_revision_by_the_calibrator_stepping_toward_the_target(router, guard_rails):
    # Target strong share 0.5 (cost_optimization_target 0.5): the median, near 0.26 for
    # beta(2,5); the router's 0.11593 moves up by at most one step. Medical has too few calls.
    legal = beta_rates(1200, 2, 5, seed=1)
    ingest_and_fold(router, routed_events(legal, threshold=0.11593, domain="legal"))
    ingest_and_fold(router, routed_events(beta_rates(100, 2, 5), threshold=0.2, domain="medical"))
    turn_on(router)
    before = router.current_revision.number

    assert tasks.recalibrate_thresholds() == 1

    router.refresh_from_db()
    revision = router.current_revision
    assert revision.number == before + 1 and revision.actor == "calibrator"
    assert revision.config["threshold"] == pytest.approx(0.11593 + 0.05)  # the step limit
    overrides = revision.config["domain_routing_overrides"]
    assert overrides["legal"]["threshold"] == pytest.approx(0.11593 + 0.05)
    assert "medical" not in overrides  # below the minimum sample: left alone
    audit = AuditEntry.objects.get(router=router, revision_number=revision.number)
    assert audit.actor == "calibrator" and "medical: Only 100 calls" in audit.reason
    assert WebhookEvent.objects.filter(router=router, type="threshold.calibrated").count() == 1
    run = CalibrationRun.objects.get(router=router)
    assert run.outcome == "published" and run.revision == revision.number
    # A second run right away (two workers, a manual run) takes no second step.
    assert recalibrate_router(router=router) == run
    # Rollbackable like any other revision.
    back = services.rollback_to(router=router, number=before, actor=OPERATOR)
    assert back.config["threshold"] == 0.11593


def test_run__bounds_hold_the_threshold_inside(router, guard_rails):
    # Target 0.02 strong share wants a threshold near the top; the bound is 0.6.
    ingest_and_fold(router, routed_events(beta_rates(600, 5, 2), threshold=0.58))
    services.update_config(router=router, changes={"threshold": 0.58,
                           "cost_optimization_target": 0.98}, actor=OPERATOR)  # fmt: skip
    turn_on(router)

    run = recalibrate_router(router=router)

    router.refresh_from_db()
    assert run.outcome == "published"
    assert router.current_revision.config["threshold"] == 0.6
    assert router.current_revision.config["domain_routing_overrides"]["legal"]["threshold"] == 0.6


def test_status__schedule_next_run_and_last_outcome(router, guard_rails):
    turn_on(router)
    recalibrate_router(router=router)

    status = dynamic_threshold_status(router=router)
    assert status["enabled"] and status["schedule"].name == SCHEDULE_NAME
    assert status["schedule"].task == "tracking.tasks.recalibrate_thresholds"
    assert status["next_run"] >= timezone.now() - timezone.timedelta(seconds=1)
    assert status["last_run"].outcome == "unchanged"  # no calls yet: nothing to move
    assert "router: Only 0 calls" in status["last_run"].summary


@pytest.fixture
def short_lived_connections():
    """Live-server threads close their connection after each request, so none outlives the test
    (a persistent one would block dropping the test database)."""
    from django.db import connections

    from controlplane.clients import recorder

    # Nor does the client-record flush thread (this test does not read client records).
    recorder.autostart = False
    settings_dict = connections.settings["default"]
    old = settings_dict.get("CONN_MAX_AGE", 0)
    settings_dict["CONN_MAX_AGE"] = 0
    yield
    settings_dict["CONN_MAX_AGE"] = old
    recorder.autostart = True


def test_run__on_the_worker__a_polling_sdk_sees_the_calibrator_revision_within_a_second(
    celery_worker,
    short_lived_connections,
    live_server,
    router,
    router_key,
    guard_rails,
    tmp_path,
    monkeypatch,
):
    from routing import FeatureFlags
    from routing.client import FlagsPoller

    # The SDK's real long-poll (30 s): the new revision within a second can only come from the
    # waiting poll being woken by the publish.
    monkeypatch.setitem(FlagsPoller.__init__.__kwdefaults__, "wait_seconds", 30)
    ingest_and_fold(router, routed_events(beta_rates(800, 2, 5, seed=3), threshold=0.11593))
    turn_on(router)
    number = router.revisions.count()
    flags = FeatureFlags(url=live_server.url, api_key=router_key, cache_path=tmp_path / "f.json")
    try:
        deadline = time.monotonic() + 5
        while flags.document().get("revision") != number:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # the SDK is now waiting in its long-poll

        # The beat job's task on a real worker (its own process and settings: the defaults,
        # minimum sample 500 and a step of 0.05, which these 800 calls pass).
        assert tasks.recalibrate_thresholds.delay().get(timeout=60) == 1
        published = time.monotonic()
        while flags.document().get("revision") != number + 1:
            assert time.monotonic() - published < 1.0, "SDK did not see the revision in 1 s"
            time.sleep(0.01)
        assert flags.document()["config"]["threshold"] == pytest.approx(0.11593 + 0.05)
    finally:
        if flags.poller is not None:
            flags.poller.stop()
        ApiKey.objects.filter(router=router).update(revoked_at=timezone.now())
        time.sleep(0.5)


def test_run__a_change_policy_holds_the_move_as_a_change_request(router, guard_rails):
    from controlplane.change_requests import set_change_policy
    from controlplane.models import ChangeRequest

    ingest_and_fold(router, routed_events(beta_rates(600, 2, 5, seed=4), threshold=0.11593))
    turn_on(router)
    set_change_policy(router=router, actor=OPERATOR, approve_threshold_change_above=0.01)
    number = router.revisions.count()

    run = recalibrate_router(router=router)

    assert run.outcome == "held" and "needs approval" in run.summary.lower()
    assert router.revisions.count() == number
    held = ChangeRequest.objects.get(router=router)
    assert held.requested_by == "calibrator"
    assert held.diff["config.threshold"] == {"before": 0.11593, "after": pytest.approx(0.16593)}
