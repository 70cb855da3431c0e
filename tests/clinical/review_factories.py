"""Build review cases directly (no engine needed): Study + Prediction + ReviewTask."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import User
from apps.clinical.choices import EscalationLevel, Priority, StudyStatus, TaskStatus
from apps.clinical.models import Prediction, ReviewTask, Study
from tests.factories import ModelVersionFactory

POINTS = {
    "S": (700.0, 800.0), "N": (1380.0, 720.0), "A": (1340.0, 1180.0), "B": (1300.0, 1520.0),
    "Pog": (1310.0, 1650.0), "Me": (1250.0, 1760.0), "Gn": (1290.0, 1720.0),
}  # fmt: skip
NAMES = {"S": "Sella", "N": "Nasion", "A": "Subspinale (A-point)", "B": "Supramentale (B-point)",
         "Pog": "Pogonion", "Me": "Menton", "Gn": "Gnathion"}  # fmt: skip
SPACING = 0.1


def landmark_rows(confidence: float = 0.3) -> list[dict]:
    return [
        {"name": NAMES[a], "abbreviation": a, "x": x, "y": y, "x_mm": round(x * SPACING, 2),
         "y_mm": round(y * SPACING, 2), "confidence": confidence}
        for a, (x, y) in POINTS.items()
    ]  # fmt: skip


def submitter() -> User:
    user, _ = User.objects.get_or_create(username="case-submitter")
    return user


def make_study(*, submitted_by: User | None = None, **kw) -> Study:
    n = uuid.uuid4().hex
    defaults = dict(
        submitted_by=submitted_by or submitter(),
        sop_instance_uid=f"1.2.826.0.1.{int(n[:12], 16)}",
        study_instance_uid=f"1.2.826.0.2.{int(n[:12], 16)}",
        deid_sop_instance_uid=f"2.25.{int(n[:16], 16)}",
        deid_study_instance_uid=f"2.25.{int(n[16:32], 16)}",
        patient_pseudonym=f"P-{n[:10]}",
        original_file=f"x/{n}.dcm",
        deid_file=f"deid/x/{n}.dcm",
        file_sha256=n + n,
        file_size=1000,
        modality="CR",
        rows=2000,
        cols=2000,
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        spacing_row_mm=SPACING,
        spacing_col_mm=SPACING,
        spacing_source="PixelSpacing",
        status=StudyStatus.IN_REVIEW,
    )
    defaults.update(kw)
    return Study.objects.create(**defaults)


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
    mv = model_version or ModelVersionFactory()
    prediction = Prediction.objects.create(
        study=study,
        model_version=mv,
        landmarks=landmarks if landmarks is not None else landmark_rows(confidence),
        measurements={},
        findings=[],
        ood_score=0.2,
        routing={"destination": "review", "priority": priority, "reasons": [], "policy_version": 1},
    )
    now = timezone.now()
    if due_in is None:
        due_in = timedelta(hours=1 if priority == Priority.URGENT else 24) - age
    task = ReviewTask.objects.create(
        study=study,
        prediction=prediction,
        priority=priority,
        status=TaskStatus.OPEN,
        level=level,
        reasons=reasons
        if reasons is not None
        else [{"code": "low_confidence", "severity": "info", "message": "A low", "landmark": "A"}],
        due_at=now + due_in,
    )
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
              findings, ood_score, ood_details, routing, timings_ms, created_at)
            SELECT id, %(mv)s, %(lms)s::jsonb, '{}'::jsonb, '[]'::jsonb, 0.2, '{}'::jsonb,
              %(routing)s::jsonb, '{}'::jsonb, now()
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
