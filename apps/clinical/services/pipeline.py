"""The worker side: infer, route, and recover studies that got stuck."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.clinical.choices import Destination, StudyStatus, TaskStatus
from apps.clinical.models import Prediction, ReviewTask, Study
from apps.clinical.routing import route
from apps.clinical.services.intake import dicom_limits, study_enqueue
from apps.clinical.services.policy import policy_view, routing_policy_current
from apps.core.errors import Conflict, NotFound
from apps.models.loader import ModelIntegrityError, predictor_for
from apps.models.selectors import model_version_active
from mahtqa.cephalometry.measurements import compute_measurements
from mahtqa.cephalometry.plausibility import PlausibilityConfig, check_plausibility
from mahtqa.imaging.dicom import decode_radiograph
from mahtqa.imaging.errors import ImagingError

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
ACTIVE = (StudyStatus.QUEUED, StudyStatus.PROCESSING)


def study_fail(*, study_id: int, code: str, message: str) -> None:
    """Mark an unfinished study failed with a stable code (a finished one is left alone)."""
    Study.objects.filter(pk=study_id, status__in=ACTIVE).update(
        status=StudyStatus.FAILED,
        error_code=code,
        error_message=message[:500],
        finished_at=timezone.now(),
    )
    logger.warning("study id=%s failed: %s", study_id, code)


def _start(study_id: int) -> Study | None:
    with transaction.atomic():
        study = Study.objects.select_for_update().filter(pk=study_id).first()
        if study is None or study.status not in ACTIVE:
            return None  # done already, failed, or gone: running twice changes nothing
        if study.attempts >= MAX_ATTEMPTS:
            study.status = StudyStatus.FAILED
            study.error_code = "too_many_attempts"
            study.error_message = f"Gave up after {study.attempts} attempts."
            study.finished_at = timezone.now()
            study.save()
            return None
        study.status = StudyStatus.PROCESSING
        study.started_at = timezone.now()
        study.attempts += 1
        study.save(update_fields=["status", "started_at", "attempts", "updated_at"])
        return study


def landmark_rows(prediction, spacing: tuple[float, float] | None) -> list[dict]:
    rows = []
    for lm in prediction.landmarks:
        rows.append(
            {
                "name": lm.name,
                "abbreviation": lm.abbreviation,
                "x": round(lm.x, 2),
                "y": round(lm.y, 2),
                "x_mm": round(lm.x * spacing[1], 2) if spacing else None,
                "y_mm": round(lm.y * spacing[0], 2) if spacing else None,
                "confidence": round(lm.confidence, 4),
            }
        )
    return rows


def analyse_points(
    *, points: np.ndarray, spacing, policy, shape_model, width: int
) -> tuple[dict, list[dict]]:
    """Measurements and plausibility findings for a set of landmarks (also used by review)."""
    measurements = {
        code: m.as_dict() for code, m in compute_measurements(points, spacing_mm=spacing).items()
    }
    config = PlausibilityConfig.from_dict(policy.plausibility or {})
    findings = check_plausibility(
        points, spacing_mm=spacing, config=config, shape_model=shape_model, image_width=width
    )
    return measurements, [f.as_dict() for f in findings]


def study_infer(*, study_id: int) -> str:
    """Run the active model on a study and route the result. Safe to run twice."""
    study = _start(study_id)
    if study is None:
        return "skipped"
    model_version = model_version_active()
    if model_version is None:
        study_fail(study_id=study_id, code="no_active_model", message="No model version is active.")
        return "failed"
    try:
        predictor = predictor_for(model_version)
    except ModelIntegrityError as exc:
        study_fail(study_id=study_id, code="model_integrity", message=str(exc))
        return "failed"
    t0 = time.perf_counter()
    with default_storage.open(study.deid_file, "rb") as fh:  # OSError -> transient, retried
        data = fh.read()
    try:
        image = decode_radiograph(data, limits=dicom_limits())
    except ImagingError as exc:
        study_fail(study_id=study_id, code=exc.code, message=exc.message)
        return "failed"
    t1 = time.perf_counter()
    spacing = study.spacing_mm
    result = predictor.predict(image.pixels, spacing_mm=spacing)
    t2 = time.perf_counter()
    policy = routing_policy_current()
    points = np.array(result.points())
    measurements, findings = analyse_points(
        points=points,
        spacing=spacing,
        policy=policy,
        shape_model=predictor.shape_model,
        width=study.cols,
    )
    landmarks = landmark_rows(result, spacing)
    decision = route(
        landmarks=landmarks,
        findings=findings,
        ood_score=result.ood_score,
        policy=policy_view(policy),
    )
    t3 = time.perf_counter()
    timings = {
        "queue_wait": (study.started_at - study.enqueued_at).total_seconds() * 1000
        if study.enqueued_at
        else None,
        "decode": (t1 - t0) * 1000,
        "inference": (t2 - t1) * 1000,
        "postprocess": (t3 - t2) * 1000,
        "engine": result.timings_ms,
    }
    return _store(
        study_id,
        model_version,
        landmarks,
        measurements,
        findings,
        result,
        decision,
        policy,
        timings,
    )


def _store(
    study_id, model_version, landmarks, measurements, findings, result, decision, policy, timings
) -> str:
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study_id)
        if study.status != StudyStatus.PROCESSING:
            return "skipped"
        prediction, _ = Prediction.objects.update_or_create(
            study=study,
            model_version=model_version,
            defaults={
                "landmarks": landmarks,
                "measurements": measurements,
                "findings": findings,
                "ood_score": result.ood_score if np.isfinite(result.ood_score) else 99.0,
                "ood_details": result.ood_details,
                "routing": decision.as_dict(),
                "timings_ms": timings,
            },
        )
        now = timezone.now()
        if decision.destination == Destination.RELEASED:
            study.status = StudyStatus.RELEASED
        else:
            study.status = StudyStatus.IN_REVIEW
            minutes = policy.sla_minutes.get(decision.priority, 24 * 60)
            ReviewTask.objects.update_or_create(
                study=study,
                defaults={
                    "prediction": prediction,
                    "priority": decision.priority,
                    "status": TaskStatus.OPEN,
                    "reasons": decision.reasons,
                    "due_at": now + timedelta(minutes=minutes),
                    "claimed_by": None,
                    "claimed_at": None,
                },
            )
        study.finished_at = now
        study.error_code = ""
        study.error_message = ""
        study.save()
    logger.info("study %s -> %s", study.public_id, study.status)
    return str(study.status)


def study_retry(*, study_id: int, user=None) -> Study:
    """Put a failed study back in the queue (an explicit, audited action)."""
    with transaction.atomic():
        study = Study.objects.select_for_update().filter(pk=study_id).first()
        if study is None:
            raise NotFound("not_found", "No such study.")
        if study.status != StudyStatus.FAILED:
            raise Conflict("not_failed", "Only failed studies can be retried.")
        study.status = StudyStatus.QUEUED
        study.error_code = study.error_message = ""
        study.attempts = 0
        study.enqueued_at = timezone.now()
        study.save()
        study_enqueue(study_id=study.pk)
    return study


def study_requeue_stuck(*, lease_seconds: int = 600) -> int:
    """Re-enqueue studies queued or processing for longer than the lease.

    Covers a lost broker message, a broker restart and a killed worker: the row says
    the job is not finished, so it is sent again; running twice is harmless.
    """
    cutoff = timezone.now() - timedelta(seconds=lease_seconds)
    with transaction.atomic():
        stuck = list(
            Study.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=StudyStatus.QUEUED, enqueued_at__lt=cutoff)
                | Q(status=StudyStatus.PROCESSING, started_at__lt=cutoff, enqueued_at__lt=cutoff)
            )
            .values_list("pk", flat=True)[:500]
        )
        Study.objects.filter(pk__in=stuck).update(enqueued_at=timezone.now())
        for pk in stuck:
            study_enqueue(study_id=pk)
    if stuck:
        logger.warning("re-enqueued %d stuck studies", len(stuck))
    return len(stuck)
