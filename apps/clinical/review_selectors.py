"""Reads for the review side: queues, counts, timeline, audit trail.

Queue pages use a fixed number of queries whatever the queue length: one page of
tasks with their study, prediction, model version and claimant joined in, and one
aggregate for all the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.clinical.choices import EscalationLevel, TaskStatus
from apps.clinical.models import AuditEvent, CaseEvent, ReviewTask, Study
from apps.clinical.services.review import levels_for

SCOPES = ("queue", "escalated", "mine")
AGES = {"1h": 1, "4h": 4, "24h": 24, "72h": 72}


@dataclass(frozen=True)
class QueueFilters:
    priority: str = ""
    finding: str = ""
    model_version: str = ""
    age: str = ""
    overdue: bool = False

    @classmethod
    def from_params(cls, params) -> QueueFilters:
        age = params.get("age", "")
        mv = params.get("model_version", "")
        return cls(
            priority=params.get("priority", "")
            if params.get("priority") in ("urgent", "normal")
            else "",
            finding=params.get("finding", "")[:64],
            model_version=mv if mv.isdigit() else "",
            age=age if age in AGES else "",
            overdue=params.get("overdue") in ("1", "on", "true"),
        )


def _scope_q(*, user, scope: str) -> Q:
    levels = levels_for(user)
    if scope == "mine":
        return Q(status=TaskStatus.CLAIMED, claimed_by=user)
    if scope == "escalated":
        return Q(status__in=(TaskStatus.OPEN, TaskStatus.CLAIMED)) & Q(
            level__in=[lv for lv in levels if lv != EscalationLevel.RADIOLOGIST]
        )
    return Q(status__in=(TaskStatus.OPEN, TaskStatus.CLAIMED), level=EscalationLevel.RADIOLOGIST)


def _finding_q(code: str) -> Q:
    if connection.vendor == "postgresql":
        return Q(reasons__contains=[{"code": code}])
    return Q(reasons__icontains=f'"code": "{code}"')  # SQLite (demo): JSON text match


def review_queue_list(*, user, scope: str, filters: QueueFilters | None = None) -> QuerySet:
    """Urgent first, then oldest. Escalated/mine scopes follow the same order."""
    f = filters or QueueFilters()
    qs = ReviewTask.objects.filter(_scope_q(user=user, scope=scope))
    if f.priority:
        qs = qs.filter(priority=f.priority)
    if f.finding:
        qs = qs.filter(_finding_q(f.finding))
    if f.model_version:
        qs = qs.filter(prediction__model_version_id=int(f.model_version))
    if f.age:
        qs = qs.filter(created_at__lte=timezone.now() - timedelta(hours=AGES[f.age]))
    if f.overdue:
        qs = qs.filter(due_at__lt=timezone.now())
    return qs.select_related(
        "study", "prediction__model_version", "claimed_by"
    ).defer("prediction__landmarks", "prediction__ood_details", "prediction__timings_ms",
            "prediction__measurements", "prediction__findings").order_by(
        "-priority", "created_at", "id"
    )  # fmt: skip


def review_queue_counts(*, user) -> dict[str, int]:
    """All the badge numbers in one query."""
    levels = levels_for(user)
    high = [lv for lv in levels if lv != EscalationLevel.RADIOLOGIST]
    now = timezone.now()
    active = Q(status__in=(TaskStatus.OPEN, TaskStatus.CLAIMED))
    first = Q(level=EscalationLevel.RADIOLOGIST)
    esc = Q(level__in=high)
    return ReviewTask.objects.filter(active).aggregate(
        queue=Count("id", filter=first),
        queue_urgent=Count("id", filter=first & Q(priority="urgent")),
        queue_open=Count("id", filter=first & Q(status=TaskStatus.OPEN)),
        queue_overdue=Count("id", filter=first & Q(due_at__lt=now)),
        escalated=Count("id", filter=esc),
        escalated_overdue=Count("id", filter=esc & Q(due_at__lt=now)),
        mine=Count("id", filter=Q(status=TaskStatus.CLAIMED, claimed_by=user)),
    )


def case_timeline(*, study: Study) -> list[dict]:
    """The case's steps, oldest first, starting with the routing decision."""
    rows: list[dict] = []
    task = getattr(study, "review_task", None)
    if task is not None:
        codes = ", ".join(r.get("code", "") for r in task.reasons)
        rows.append(
            {"at": task.created_at, "kind": "routed", "label": "Routed to review",
             "actor": "pipeline", "level": "radiologist", "message": f"{task.priority}: {codes}"}
        )  # fmt: skip
    for ev in CaseEvent.objects.filter(study=study).select_related("actor"):
        rows.append(
            {"at": ev.created_at, "kind": ev.kind, "label": ev.get_kind_display(),
             "actor": ev.actor.username if ev.actor else "system", "level": ev.level,
             "message": ev.message}
        )  # fmt: skip
    return rows


def audit_list(*, action: str = "", actor: str = "") -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all()
    if action:
        qs = qs.filter(action=action)
    if actor:
        qs = qs.filter(actor_username=actor)
    return qs.order_by("-created_at", "-id")
