"""A study held by a worker that stopped beating is taken over within seconds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.clinical.choices import StudyStatus
from apps.clinical.models import Study
from apps.clinical.services import study_infer
from apps.clinical.services.pipeline import study_requeue_stuck
from apps.monitoring.services import worker_heartbeat_record
from apps.outbox.models import OutboxMessage

from .conftest import cr_bytes

pytestmark = pytest.mark.django_db


def _processing(api_client_a, *, worker: str, age_s: float) -> Study:
    response = api_client_a.post_dicom(cr_bytes(seed=21))
    assert response.status_code == 202
    study = Study.objects.get(public_id=response.json()["id"])
    OutboxMessage.objects.update(status="done")  # the first delivery was picked up
    started = timezone.now() - timedelta(seconds=age_s)
    Study.objects.filter(pk=study.pk).update(
        status=StudyStatus.PROCESSING, worker=worker, started_at=started, enqueued_at=started
    )
    return study


def test_a_dead_workers_study_is_requeued_after_the_grace(api_client_a, settings):
    settings.MAHTQA_WORKER_DEAD_S = 15
    study = _processing(api_client_a, worker="w1@host:4242", age_s=20)
    assert study_requeue_stuck() == 1
    live = OutboxMessage.objects.filter(status="pending", kwargs={"study_id": study.pk})
    assert live.count() == 1
    assert study_requeue_stuck() == 0  # not again right away


def test_a_live_workers_study_is_left_alone(api_client_a, settings):
    settings.MAHTQA_WORKER_DEAD_S = 15
    study = _processing(api_client_a, worker="w2@host:77", age_s=20)
    worker_heartbeat_record(worker_key="w2@host:77")
    assert study_requeue_stuck() == 0
    # A redelivered copy arriving at another worker skips it instead of running it twice.
    assert study_infer(study_id=study.pk, worker="w3@host:88") == "skipped"
    study.refresh_from_db()
    assert study.worker == "w2@host:77"


def test_within_the_grace_nothing_moves(api_client_a, settings):
    settings.MAHTQA_WORKER_DEAD_S = 15
    _processing(api_client_a, worker="w4@host:1", age_s=5)
    assert study_requeue_stuck() == 0
