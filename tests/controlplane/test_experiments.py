"""A/B experiment services: start and stop publish revisions that carry the experiment in the
flags document; revisions in between keep it; concluding may apply the treatment."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from controlplane import services
from controlplane.experiments import (
    conclude_experiment,
    create_experiment,
    start_experiment,
    stop_experiment,
)
from controlplane.models import AuditEntry, ExperimentStatus


def _document(router_api) -> dict:
    return orjson.loads(router_api.get("/api/v1/flags").content)


@pytest.fixture
def experiment(router, actor):
    return create_experiment(
        router=router, name="threshold 0.3", treatment_threshold=0.3, split=0.2, actor=actor
    )


def test_create__draft__audited__nothing_in_the_document(router, router_api, experiment):
    assert experiment.status == ExperimentStatus.DRAFT
    assert AuditEntry.objects.filter(router=router, action="experiment.create").exists()
    assert _document(router_api)["experiment"] is None


def test_create__bad_values__errors_per_field(router, actor):
    with pytest.raises(ValidationError) as error:
        create_experiment(
            router=router,
            name=" ",
            treatment_threshold=1.5,
            split=True,
            ends_at=timezone.now() - timedelta(hours=1),
            actor=actor,
        )
    assert set(error.value.message_dict) == {"name", "treatment_threshold", "split", "ends_at"}


def test_start__new_revision__document_carries_the_experiment__etag_changes(
    router, router_api, experiment, actor
):
    before = router_api.get("/api/v1/flags")["ETag"]

    revision = start_experiment(experiment=experiment, actor=actor)

    document = _document(router_api)
    assert document["revision"] == revision.number
    assert document["experiment"] == {"id": experiment.pk, "split": 0.2, "treatment_threshold": 0.3}
    assert router_api.get("/api/v1/flags")["ETag"] != before
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.RUNNING and experiment.starts_at is not None
    audit = AuditEntry.objects.get(router=router, action="experiment.start")
    assert audit.diff["experiment"]["after"]["id"] == experiment.pk


def test_running__flag_edits_and_rollbacks_keep_it__stop_removes_it(
    router, router_api, experiment, actor
):
    start_experiment(experiment=experiment, actor=actor)
    services.set_flag(
        router=router, name="routellm_a_b_testing", enabled=True, rollout_percent=100, actor=actor
    )
    assert _document(router_api)["experiment"]["id"] == experiment.pk
    services.rollback_to(router=router, number=1, actor=actor)
    assert _document(router_api)["experiment"]["id"] == experiment.pk

    stop_experiment(experiment=experiment, actor=actor)

    assert _document(router_api)["experiment"] is None
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.STOPPED and experiment.stopped_at is not None


def test_start__second_running_experiment_refused(router, experiment, actor):
    start_experiment(experiment=experiment, actor=actor)
    other = create_experiment(router=router, name="b", treatment_threshold=0.1, actor=actor)
    with pytest.raises(ValidationError, match="another experiment is running"):
        start_experiment(experiment=other, actor=actor)


def test_conclude__apply_treatment__one_revision_with_its_threshold(
    router, router_api, experiment, actor
):
    start_experiment(experiment=experiment, actor=actor)

    concluded = conclude_experiment(
        experiment=experiment, actor=actor, conclusion="cheaper, same success", apply_treatment=True
    )

    router.refresh_from_db()
    current = router.current_revision
    assert current.action == "experiment.apply"
    assert current.config["threshold"] == 0.3
    assert current.experiment is None
    assert concluded.status == ExperimentStatus.CONCLUDED
    assert concluded.applied_revision == current.number
    assert _document(router_api)["config"]["threshold"] == 0.3
    assert AuditEntry.objects.filter(router=router, action="experiment.conclude").exists()


def test_conclude__stopped_without_applying__no_revision(router, experiment, actor):
    start_experiment(experiment=experiment, actor=actor)
    stopped = stop_experiment(experiment=experiment, actor=actor)

    concluded = conclude_experiment(experiment=experiment, actor=actor, conclusion="no gain")

    router.refresh_from_db()
    assert router.current_revision_id == stopped.pk
    assert concluded.status == ExperimentStatus.CONCLUDED and concluded.applied_revision is None
    with pytest.raises(ValidationError, match="concluded experiment cannot be started"):
        start_experiment(experiment=concluded, actor=actor)


def test_stop_ended__past_its_end__stopped_by_the_beat_job(router, router_api, actor):
    from controlplane.experiments import stop_ended_experiments
    from controlplane.tasks import end_experiments

    ending = create_experiment(
        router=router,
        name="one hour",
        treatment_threshold=0.2,
        ends_at=timezone.now() + timedelta(hours=1),
        actor=actor,
    )
    start_experiment(experiment=ending, actor=actor)
    assert end_experiments() == 0  # not yet

    assert stop_ended_experiments(now=timezone.now() + timedelta(hours=2)) == 1

    ending.refresh_from_db()
    assert ending.status == ExperimentStatus.STOPPED
    assert _document(router_api)["experiment"] is None
    router.refresh_from_db()
    assert router.current_revision.actor == "system:experiments"
