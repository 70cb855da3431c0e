"""Build review cases directly (no engine needed): Study + Prediction + ReviewTask.

Thin helpers over tests/factories (StudyFactory, PredictionFactory, ReviewTaskFactory).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import User
from apps.clinical.choices import EscalationLevel, Priority
from apps.clinical.models import ReviewTask, Study
from tests.factories import (
    NAMES,
    POINTS,
    SPACING,
    ModelVersionFactory,
    PredictionFactory,
    ReviewTaskFactory,
    StudyFactory,
    landmark_rows,
)

__all__ = ["NAMES", "POINTS", "SPACING", "landmark_rows", "make_case", "make_study", "seed_scale"]


def submitter() -> User:
    user, _ = User.objects.get_or_create(username="case-submitter")
    return user


def make_study(*, submitted_by: User | None = None, **kw) -> Study:
    return StudyFactory(submitted_by=submitted_by or submitter(), **kw)


def make_case(
    *,
    priority: str = Priority.NORMAL,
    level: str = EscalationLevel.RADIOLOGIST,
    age: timedelta = timedelta(minutes=5),
    due_in: timedelta | None = None,
    study: Study | None = None,
    model_version=None,
    reasons: list[dict] | None = None,
    confidence: float = 0.3,
    landmarks: list[dict] | None = None,
) -> ReviewTask:
    study = study or make_study()
    prediction = PredictionFactory(
        study=study,
        model_version=model_version or ModelVersionFactory(),
        landmarks=landmarks if landmarks is not None else landmark_rows(confidence),
        routing={"destination": "review", "priority": priority, "reasons": [], "policy_version": 1},
    )
    now = timezone.now()
    if due_in is None:
        due_in = timedelta(hours=1 if priority == Priority.URGENT else 24) - age
    extra = {} if reasons is None else {"reasons": reasons}
    task = ReviewTaskFactory(
        study=study, prediction=prediction, priority=priority, level=level,
        due_at=now + due_in, **extra,
    )  # fmt: skip
    ReviewTask.objects.filter(pk=task.pk).update(created_at=now - age)
    task.refresh_from_db()
    return task


def seed_scale(*, n_studies: int, n_tasks: int, urgent_share: float = 0.1) -> None:
    """PostgreSQL only: ``n_studies`` studies, ``n_tasks`` of them with an open review
    task (oldest first, ~``urgent_share`` urgent), in a few INSERT ... SELECT statements."""
    import json

    from django.db import connection

    mv = ModelVersionFactory()
    user = submitter()
    lms = json.dumps(landmark_rows())
    reasons = json.dumps([{"code": "low_confidence", "severity": "info", "message": "A low",
                           "landmark": "A"}])  # fmt: skip
    routing = json.dumps({"destination": "review", "priority": "normal", "reasons": [],
                          "policy_version": 1})  # fmt: skip
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO clinical_study (public_id, submitted_by_id, sop_instance_uid,
              study_instance_uid, deid_sop_instance_uid, deid_study_instance_uid,
              patient_pseudonym, original_file, deid_file, file_sha256, file_size, modality,
              rows, cols, transfer_syntax_uid, spacing_row_mm, spacing_col_mm, spacing_source,
              status, error_code, error_message, attempts, received_at, updated_at)
            SELECT gen_random_uuid(), %(user)s, 'scale.1.' || g, 'scale.2.' || g,
              'scale.3.' || g, 'scale.4.' || g, 'P-' || g, 'x/' || g || '.dcm',
              'deid/x/' || g || '.dcm', md5(g::text) || md5(g::text), 1000, 'CR', 2000, 2000,
              '1.2.840.10008.1.2.1', 0.1, 0.1, 'PixelSpacing',
              CASE WHEN g <= %(tasks)s THEN 'in_review' ELSE 'released' END, '', '', 1,
              now() - make_interval(mins => %(studies)s - g), now()
            FROM generate_series(1, %(studies)s) AS g
            """,
            {"user": user.pk, "tasks": n_tasks, "studies": n_studies},
        )
        cur.execute(
            """
            INSERT INTO clinical_prediction (study_id, model_version_id, landmarks, measurements,
              findings, ood_score, ood_details, risk_details, routing, timings_ms, created_at)
            SELECT id, %(mv)s, %(lms)s::jsonb, '{}'::jsonb, '[]'::jsonb, 0.2, '{}'::jsonb,
              '{}'::jsonb, %(routing)s::jsonb, '{}'::jsonb, now()
            FROM clinical_study WHERE status = 'in_review' AND sop_instance_uid LIKE 'scale.%%'
            """,
            {"mv": mv.pk, "lms": lms, "routing": routing},
        )
        cur.execute(
            """
            INSERT INTO clinical_reviewtask (study_id, prediction_id, priority, status, level,
              reasons, due_at, escalation_reason, created_at)
            SELECT p.study_id, p.id,
              CASE WHEN random() < %(urgent)s THEN 'urgent' ELSE 'normal' END, 'open',
              'radiologist', %(reasons)s::jsonb, now() + interval '1 hour' * (random() * 48 - 24),
              '', s.received_at
            FROM clinical_prediction p JOIN clinical_study s ON s.id = p.study_id
            WHERE s.sop_instance_uid LIKE 'scale.%%'
            """,
            {"urgent": urgent_share, "reasons": reasons},
        )
        cur.execute(
            "ANALYZE clinical_study; ANALYZE clinical_reviewtask; ANALYZE clinical_prediction"
        )
