"""The worker side: infer, route, and recover studies that got stuck."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.clinical.choices import Destination, StudyStatus, TaskStatus
from apps.clinical.models import Prediction, ReviewTask, Study
from apps.clinical.routing import RoutingDecision, route
from apps.clinical.services.images import study_png_store
from apps.clinical.services.intake import dicom_limits, study_enqueue
from apps.clinical.services.policy import (
    ood_gate,
    policy_view,
    risk_gate,
    routing_policy_current,
    site_offset_apply,
    site_reviews_all,
)
from apps.core.errors import Conflict, NotFound
from apps.models.loader import ModelIntegrityError, predictor_for
from apps.models.selectors import model_version_active, model_version_shadow_list
from apps.monitoring.selectors import worker_keys_alive
from mahtqa.cephalometry.measurements import compute_measurements
from mahtqa.cephalometry.plausibility import PlausibilityConfig, check_plausibility
from mahtqa.engine.types import EnginePrediction
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


def _held_by_a_live_worker(study: Study) -> bool:
    """Another worker that is still beating is processing it (a duplicate delivery)."""
    if study.status != StudyStatus.PROCESSING or not study.worker:
        return False
    alive = worker_keys_alive(within_s=settings.MAHTQA_WORKER_DEAD_S)
    fresh = study.started_at and timezone.now() - study.started_at < timedelta(
        seconds=settings.MAHTQA_INFER_HARD_LIMIT_S
    )
    return study.worker in alive and bool(fresh)


def _start(study_id: int, worker: str = "") -> Study | None:
    with transaction.atomic():
        study = Study.objects.select_for_update().filter(pk=study_id).first()
        if study is None or study.status not in ACTIVE:
            return None  # done already, failed, or gone: running twice changes nothing
        if study.worker != worker and _held_by_a_live_worker(study):
            return None  # a redelivered copy while a live worker has it: leave it be
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
        study.worker = worker[:200]
        study.save(update_fields=["status", "started_at", "attempts", "worker", "updated_at"])
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


def prediction_decide(
    *, result, spacing, width: int, model_version, shape_model, policy=None, site=None,
):  # fmt: skip
    """Landmark rows, measurements, findings and the routing decision the policy gives a
    prediction; also what evaluations and shadow runs ask "would this be released?"."""
    policy = policy or routing_policy_current()
    points = np.array(result.points())
    measurements, findings = analyse_points(
        points=points, spacing=spacing, policy=policy, shape_model=shape_model, width=width
    )
    landmarks = landmark_rows(result, spacing)
    if (result.risk_details or {}).get("site_offset", {}).get("not_applied"):
        site_gates = None  # the site's threshold was certified on corrected points
    else:
        site_gates = site
    decision = route(
        landmarks=landmarks,
        findings=findings,
        ood_score=result.ood_score,
        policy=policy_view(policy),
        risk=risk_gate(
            policy=policy, manifest=model_version.manifest, case_risk=result.case_risk,
            site=site_gates,
        ),
        site_review_all=site_reviews_all(policy=policy, site=site),
        ood=ood_gate(
            manifest=model_version.manifest, ood_details=result.ood_details,
            ood_score=result.ood_score, site=site_gates,
        ),
    )  # fmt: skip
    return landmarks, measurements, findings, decision


def study_infer(*, study_id: int, worker: str = "") -> str:
    """Run the active model on a study and route the result. Safe to run twice.

    ``worker``: the ``hostname:pid`` of the worker running it (liveness is tracked)."""
    study = _start(study_id, worker)
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
    result = site_offset_apply(
        result=predictor.predict(image.pixels, spacing_mm=spacing),
        manifest=model_version.manifest, site=study.site, spacing_mm=spacing,
    )  # fmt: skip
    t2 = time.perf_counter()
    policy = routing_policy_current()
    landmarks, measurements, findings, decision = prediction_decide(
        result=result, spacing=spacing, width=study.cols, model_version=model_version,
        shape_model=predictor.shape_model, policy=policy, site=study.site,
    )  # fmt: skip
    if decision.destination == Destination.REVIEW:
        study_png_store(study=study, image=image)  # decoded once: the review reuses it
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


def _routing_record(decision: RoutingDecision, result: EnginePrediction) -> dict:
    """The decision as stored and shown to API clients; it says when the landmarks carry
    the site's offset (``site_offset_apply``), or why they do not."""
    record = decision.as_dict()
    applied = (result.risk_details or {}).get("site_offset")
    if applied:
        record["site_offset"] = {k: applied[k] for k in ("site", "n", "not_applied")
                                 if k in applied}  # fmt: skip
    return record


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
                "case_risk": result.case_risk,
                "risk_details": result.risk_details,
                "routing": _routing_record(decision, result),
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
        candidates = model_version_shadow_list()
        if candidates:  # shadow mode: the candidates run on this study too, never released
            from apps.clinical.services.shadow import shadow_enqueue

            shadow_enqueue(study_id=study.pk, candidates=candidates)
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


def study_requeue_stuck(*, lease_seconds: int | None = None, now=None) -> int:
    """Re-enqueue studies whose job is not moving.

    - processing on a worker that stopped beating (killed): within seconds
      (``MAHTQA_WORKER_DEAD_S``), not after a lease;
    - queued or processing for longer than the lease (derived from the task time
      limits): a last resort for anything else.
    A lost broker message is the outbox's job (it re-publishes). Running twice is
    harmless: the next worker starts the study again, or skips it if it is done.
    """
    now = now or timezone.now()
    lease = lease_seconds or settings.MAHTQA_STUDY_LEASE_S
    cutoff = now - timedelta(seconds=lease)
    grace = now - timedelta(seconds=settings.MAHTQA_WORKER_DEAD_S)
    alive = worker_keys_alive(within_s=settings.MAHTQA_WORKER_DEAD_S, now=now)
    with transaction.atomic():
        rows = list(
            Study.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=StudyStatus.QUEUED, enqueued_at__lt=cutoff)
                | Q(status=StudyStatus.PROCESSING, started_at__lt=grace, enqueued_at__lt=grace)
            )
            .values_list("pk", "status", "worker", "started_at", "enqueued_at")[:500]
        )
        stuck = [
            pk for pk, status, worker, started, enqueued in rows
            if status == StudyStatus.QUEUED
            or (worker and worker not in alive)  # its worker died
            or (started < cutoff and enqueued < cutoff)  # past every time limit
        ]  # fmt: skip
        Study.objects.filter(pk__in=stuck).update(enqueued_at=now)
        for pk in stuck:
            study_enqueue(study_id=pk)
    if stuck:
        logger.warning("re-enqueued %d stuck studies", len(stuck))
    return len(stuck)
