"""Recall: results released automatically during an incident go back to a radiologist."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.clinical.choices import CaseEventKind, Priority, StudyStatus, TaskStatus
from apps.clinical.models import CaseEvent, Prediction, ReviewTask, Study
from apps.clinical.services.policy import routing_policy_current

RECALL_LIMIT = 5000


def studies_recall_for_review(
    *, since: datetime, message: str, now: datetime | None = None
) -> tuple[int, int]:
    """Every study auto-released since ``since`` gets an urgent review task (reason
    ``incident_recall``), one transaction per study, at most RECALL_LIMIT a call.
    Returns (recalled, released since ``since`` in all): run it again for the rest.
    Safe to run twice: a study already in review is left alone."""
    now = now or timezone.now()
    sla = routing_policy_current().sla_minutes
    reason = {"code": "incident_recall", "severity": "high", "message": message[:300]}
    recalled = 0
    released = Study.objects.filter(status=StudyStatus.RELEASED, finished_at__gte=since)
    total = released.count()
    ids = list(released.order_by("pk").values_list("pk", flat=True)[:RECALL_LIMIT])
    for pk in ids:
        with transaction.atomic():
            study = Study.objects.select_for_update().filter(pk=pk).first()
            prediction = Prediction.objects.filter(study_id=pk).order_by("-pk").first()
            if study is None or study.status != StudyStatus.RELEASED or prediction is None:
                continue
            due = now + timedelta(minutes=int(sla.get(Priority.URGENT, 60)))
            ReviewTask.objects.update_or_create(
                study=study,
                defaults={
                    "prediction": prediction, "priority": Priority.URGENT,
                    "status": TaskStatus.OPEN, "reasons": [reason], "due_at": due,
                    "claimed_by": None, "claimed_at": None, "closed_at": None,
                },
            )  # fmt: skip
            study.status = StudyStatus.IN_REVIEW
            study.save(update_fields=["status"])
            CaseEvent.objects.create(
                study=study, kind=CaseEventKind.RECALLED, message=message[:300],
            )  # fmt: skip
            recalled += 1
    return recalled, total
