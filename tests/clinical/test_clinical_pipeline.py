"""The worker side in-process: inference, routing, idempotency, recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.clinical.choices import StudyStatus
from apps.clinical.models import Prediction, ReviewTask, Study
from apps.clinical.services import (
    routing_policy_current,
    routing_policy_update,
    study_infer,
    study_requeue_stuck,
    study_retry,
)
from apps.core.errors import Conflict, InvalidInput

from .conftest import cr_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _submit(client, data) -> Study:
    resp = client.post_dicom(data)
    assert resp.status_code == 202, resp.json()
    return Study.objects.get(public_id=resp.json()["id"])


def test_inference_stores_landmarks_measurements_and_routes(
    api_client_a, bundled_model, phantom_bytes
):
    study = _submit(api_client_a, phantom_bytes)
    assert study_infer(study_id=study.pk) in ("released", "in_review")
    study.refresh_from_db()
    pred = Prediction.objects.get(study=study)
    assert pred.model_version == bundled_model
    assert [lm["abbreviation"] for lm in pred.landmarks] == ["S", "N", "A", "B", "Pog", "Me", "Gn"]
    for lm in pred.landmarks:
        assert 0 <= lm["x"] <= study.cols
        assert 0 <= lm["y"] <= study.rows
        assert lm["x_mm"] == pytest.approx(lm["x"] * 0.3023, abs=0.01)
        assert 0.0 <= lm["confidence"] <= 1.0
    assert set(pred.measurements) == {"SNA", "SNB", "ANB", "S-N", "N-Me", "Y-axis"}
    # a phantom is not a radiograph from the training device: never released unreviewed
    assert study.status == StudyStatus.IN_REVIEW
    assert any(r["code"] == "out_of_distribution" for r in pred.routing["reasons"])
    assert pred.routing["policy_version"] == routing_policy_current().version
    assert ReviewTask.objects.get(study=study).due_at > timezone.now()


def test_running_twice_replaces_never_duplicates(api_client_a, bundled_model, phantom_bytes):
    study = _submit(api_client_a, phantom_bytes)
    study_infer(study_id=study.pk)
    assert study_infer(study_id=study.pk) == "skipped"
    # even if the row is put back to processing (a redelivered message), one prediction remains
    Study.objects.filter(pk=study.pk).update(status=StudyStatus.PROCESSING)
    study_infer(study_id=study.pk)
    assert Prediction.objects.filter(study=study).count() == 1
    assert ReviewTask.objects.filter(study=study).count() == 1


def test_unknown_spacing_makes_the_case_urgent(api_client_a, bundled_model):
    study = _submit(api_client_a, cr_bytes(rows=400, cols=320, spacing_mm=None))
    study_infer(study_id=study.pk)
    study.refresh_from_db()
    task = ReviewTask.objects.get(study=study)
    assert task.priority == "urgent"
    pred = Prediction.objects.get(study=study)
    assert all(lm["x_mm"] is None for lm in pred.landmarks)
    assert any(f["code"] == "spacing_unknown" for f in pred.findings)
    assert pred.measurements["S-N"]["unit"] == "px"


def test_review_all_policy_sends_everything_to_review(
    api_client_a, bundled_model, phantom_bytes, role_user
):
    admin = role_user("admin")
    routing_policy_update(
        user=admin,
        review_policy="all",
        max_ood_score=1000.0,
        min_confidence=0.0,
        urgent_severities=[],
        plausibility={},
    )
    study = _submit(api_client_a, phantom_bytes)
    study_infer(study_id=study.pk)
    task = ReviewTask.objects.get(study=study)
    assert any(r["code"] in ("review_all", "low_confidence") or r["severity"] for r in task.reasons)
    assert Study.objects.get(pk=study.pk).status == StudyStatus.IN_REVIEW


def test_no_active_model_fails_with_a_code_and_can_be_retried(api_client_a, phantom_bytes):
    study = _submit(api_client_a, phantom_bytes)
    assert study_infer(study_id=study.pk) == "failed"
    study.refresh_from_db()
    assert (study.status, study.error_code) == (StudyStatus.FAILED, "no_active_model")
    body = api_client_a.get(f"/api/v1/studies/{study.public_id}/").json()
    assert body["error"]["code"] == "no_active_model"
    study_retry(study_id=study.pk)
    study.refresh_from_db()
    assert study.status == StudyStatus.QUEUED
    with pytest.raises(Conflict):
        study_retry(study_id=study.pk)


def test_stuck_studies_are_requeued_after_the_lease(api_client_a, phantom_bytes):
    study = _submit(api_client_a, phantom_bytes)
    assert study_requeue_stuck(lease_seconds=600) == 0
    old = timezone.now() - timedelta(hours=1)
    Study.objects.filter(pk=study.pk).update(
        status=StudyStatus.PROCESSING, started_at=old, enqueued_at=old
    )
    assert study_requeue_stuck(lease_seconds=600) == 1
    study.refresh_from_db()
    assert study.enqueued_at > old
    assert study_requeue_stuck(lease_seconds=600) == 0  # not again until the lease passes


def test_policy_changes_are_versioned_and_validated(role_user):
    admin = role_user("admin")
    first = routing_policy_current()
    second = routing_policy_update(user=admin, min_confidence=0.7, note="tighter")
    assert second.version == first.version + 1
    assert routing_policy_current().min_confidence == 0.7
    with pytest.raises(InvalidInput) as err:
        routing_policy_update(user=admin, escalation_chain=[])
    assert "escalation_chain" in err.value.details
    with pytest.raises(InvalidInput):
        routing_policy_update(user=admin, min_confidence=1.5)
    assert routing_policy_current().version == second.version
