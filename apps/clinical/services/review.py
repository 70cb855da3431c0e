"""Working the review queue: claim, recompute, decide. Every write takes the task row lock."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.clinical.choices import (
    AuditAction,
    CaseEventKind,
    EscalationLevel,
    Priority,
    ReviewOutcome,
    StudyStatus,
    TaskStatus,
    reason_label,
)
from apps.clinical.models import CaseEvent, Review, ReviewTask, Study
from apps.clinical.services.audit import audit_record
from apps.clinical.services.pipeline import analyse_points
from apps.clinical.services.policy import routing_policy_current
from apps.core.errors import Conflict, Forbidden, InvalidInput
from apps.core.navigation import user_has_perm
from mahtqa.cephalometry.landmarks import ABBREVIATIONS

MOVE_EPSILON_PX = 0.01


def claim_idle_minutes() -> int:
    return int(getattr(settings, "MAHTQA_CLAIM_IDLE_MINUTES", 30))


def levels_for(user) -> list[str]:
    """Task levels a user may work: radiologists the first level; seniors and admins above."""
    levels = []
    if user_has_perm(user, "accounts.review_study"):
        levels.append(EscalationLevel.RADIOLOGIST)
    if user_has_perm(user, "accounts.work_escalations"):
        levels.append(EscalationLevel.SENIOR)
    if user_has_perm(user, "accounts.manage_thresholds"):
        levels.append(EscalationLevel.ADMIN)
    return levels


def _may_work(user, task: ReviewTask) -> bool:
    if task.level == EscalationLevel.RADIOLOGIST:
        return user_has_perm(user, "accounts.review_study")
    if task.level == EscalationLevel.SENIOR:
        return user_has_perm(user, "accounts.work_escalations")
    return user_has_perm(user, "accounts.manage_thresholds")


def _claim(task: ReviewTask, user, now) -> None:
    task.status = TaskStatus.CLAIMED
    task.claimed_by = user
    task.claimed_at = task.touched_at = now
    task.save(update_fields=["status", "claimed_by", "claimed_at", "touched_at"])
    CaseEvent.objects.create(
        study_id=task.study_id, kind=CaseEventKind.CLAIMED, actor=user, level=task.level
    )


def review_task_claim_next(*, user, escalated: bool = False, ip: str | None = None):
    """Claim the next open case (urgent first, then oldest) that nobody else holds.

    ``SELECT ... FOR UPDATE SKIP LOCKED``: concurrent reviewers each lock a different
    row, so no case is handed out twice. Returns the task or None (queue empty).
    A reviewer who already holds a claim at this level gets it back first.
    """
    levels = levels_for(user)
    levels = [lv for lv in levels if lv != EscalationLevel.RADIOLOGIST] if escalated else levels[:1]
    if not levels:
        raise Forbidden("permission_denied", "You may not work this queue.")
    now = timezone.now()
    with transaction.atomic():
        held = (
            ReviewTask.objects.filter(status=TaskStatus.CLAIMED, claimed_by=user, level__in=levels)
            .order_by("claimed_at", "id")
            .first()
        )
        if held is not None:
            return held
        task = (
            ReviewTask.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=TaskStatus.OPEN, level__in=levels)
            .order_by("-priority", "created_at", "id")
            .first()
        )
        if task is None:
            return None
        _claim(task, user, now)
    audit_record(
        actor=user,
        action=AuditAction.CASE_CLAIM,
        target_type="study",
        target_id=str(task.study.public_id),
        ip=ip,
        details={"level": task.level, "how": "next"},
    )
    return task


def review_task_claim(*, user, study: Study, ip: str | None = None) -> ReviewTask:
    """Claim one chosen case (from the queue list). 409 if someone else holds it."""
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().filter(study=study).first()
        if task is None or task.status == TaskStatus.DONE:
            raise Conflict("not_open", "This case is not waiting for review.")
        if not _may_work(user, task):
            raise Forbidden("permission_denied", "This case needs a more senior reviewer.")
        if task.status == TaskStatus.CLAIMED:
            if task.claimed_by_id == user.pk:
                return task
            raise Conflict("claimed", "Another reviewer has claimed this case.")
        _claim(task, user, timezone.now())
    audit_record(
        actor=user,
        action=AuditAction.CASE_CLAIM,
        target_type="study",
        target_id=str(study.public_id),
        ip=ip,
        details={"level": task.level, "how": "chosen"},
    )
    return task


def may_take_over(user) -> bool:
    """Seniors and admins may take over a case another reviewer holds."""
    return user_has_perm(user, "accounts.work_escalations") or user_has_perm(
        user, "accounts.manage_thresholds"
    )


def review_task_take_over(*, user, study: Study, reason: str, ip: str | None = None) -> ReviewTask:
    """A senior or admin takes a claimed case from its holder, with a reason (audited)."""
    reason = (reason or "").strip()[:500]
    if not may_take_over(user):
        raise Forbidden("permission_denied", "Only a senior radiologist or an admin may take over.")
    if not reason:
        raise InvalidInput(
            "reason_required", "Say why you take the case over.", details={"reason": "required"}
        )
    with transaction.atomic():
        task = (
            ReviewTask.objects.select_for_update(of=("self",))
            .select_related("claimed_by")
            .filter(study=study)
            .first()
        )
        if task is None or task.status == TaskStatus.DONE:
            raise Conflict("not_open", "This case is not waiting for review.")
        if not _may_work(user, task):
            raise Forbidden("permission_denied", "This case needs a more senior reviewer.")
        if task.status != TaskStatus.CLAIMED:
            raise Conflict("not_claimed", "Nobody holds this case: claim it instead.")
        if task.claimed_by_id == user.pk:
            return task
        previous = task.claimed_by.username if task.claimed_by else ""
        _claim(task, user, timezone.now())
        CaseEvent.objects.create(
            study=study, kind=CaseEventKind.TAKEN_OVER, actor=user, level=task.level,
            message=f"from {previous}: {reason}",
        )  # fmt: skip
    audit_record(
        actor=user,
        action=AuditAction.CASE_TAKEOVER,
        target_type="study",
        target_id=str(study.public_id),
        ip=ip,
        details={"from": previous, "level": task.level, "reason": reason},
    )
    return task


def review_task_release(*, user, study: Study) -> ReviewTask:
    """Give a claimed case back to the queue."""
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().get(study=study)
        if task.status != TaskStatus.CLAIMED or task.claimed_by_id != user.pk:
            raise Conflict("not_claimed", "You do not hold this case.")
        task.status = TaskStatus.OPEN
        task.claimed_by = None
        task.claimed_at = task.touched_at = None
        task.save(update_fields=["status", "claimed_by", "claimed_at", "touched_at"])
        CaseEvent.objects.create(
            study=study, kind=CaseEventKind.RELEASED, actor=user, level=task.level
        )
    return task


def review_task_release_idle(*, idle_minutes: int | None = None) -> int:
    """Return claims idle for longer than the limit to the queue (beat). Safe to run twice."""
    idle = claim_idle_minutes() if idle_minutes is None else idle_minutes
    cutoff = timezone.now() - timedelta(minutes=idle)
    with transaction.atomic():
        stale = list(
            ReviewTask.objects.select_for_update(skip_locked=True)
            .filter(status=TaskStatus.CLAIMED, touched_at__lt=cutoff)
            .values_list("pk", "study_id", "level")[:1000]
        )
        ReviewTask.objects.filter(pk__in=[s[0] for s in stale]).update(
            status=TaskStatus.OPEN, claimed_by=None, claimed_at=None, touched_at=None
        )
        CaseEvent.objects.bulk_create(
            CaseEvent(
                study_id=study_id,
                kind=CaseEventKind.CLAIM_EXPIRED,
                level=level,
                message=f"No activity for {idle} minutes.",
            )
            for _, study_id, level in stale
        )
    return len(stale)


def review_task_touch(*, user, task: ReviewTask) -> None:
    if task.status == TaskStatus.CLAIMED and task.claimed_by_id == user.pk:
        ReviewTask.objects.filter(pk=task.pk).update(touched_at=timezone.now())


def landmarks_clean(*, raw, study: Study, before: list[dict]) -> list[dict]:
    """Validate landmarks sent by the review screen; returns rows like the prediction's.

    Unmoved landmarks keep the model's confidence; moved ones get ``confidence: None``
    (placed by a person) and ``corrected: True``.
    """
    if not isinstance(raw, list) or len(raw) != len(ABBREVIATIONS):
        raise InvalidInput("invalid_landmarks", f"Send all {len(ABBREVIATIONS)} landmarks.")
    by_abbr = {lm.get("abbreviation"): lm for lm in raw if isinstance(lm, dict)}
    if set(by_abbr) != set(ABBREVIATIONS):
        raise InvalidInput("invalid_landmarks", "Landmarks must be " + ", ".join(ABBREVIATIONS))
    old = {lm["abbreviation"]: lm for lm in before}
    spacing = study.spacing_mm
    rows = []
    for abbr in ABBREVIATIONS:
        try:
            x, y = float(by_abbr[abbr]["x"]), float(by_abbr[abbr]["y"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("invalid_landmarks", f"{abbr} needs numeric x and y.") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidInput("invalid_landmarks", f"{abbr} is not a finite point.")
        if not (0 <= x <= study.cols and 0 <= y <= study.rows):
            raise InvalidInput("invalid_landmarks", f"{abbr} lies outside the image.")
        prev = old.get(abbr, {})
        moved = (
            abs(x - prev.get("x", -1e9)) > MOVE_EPSILON_PX
            or abs(y - prev.get("y", -1e9)) > MOVE_EPSILON_PX
        )
        row = {
            "name": prev.get("name", abbr),
            "abbreviation": abbr,
            "x": round(x, 2),
            "y": round(y, 2),
            "x_mm": round(x * spacing[1], 2) if spacing else None,
            "y_mm": round(y * spacing[0], 2) if spacing else None,
            "confidence": None if moved else prev.get("confidence"),
        }
        if moved:
            row["corrected"] = True
        rows.append(row)
    return rows


def review_recompute(*, study: Study, landmarks: list[dict]) -> tuple[dict, list[dict]]:
    """Measurements and findings for the landmarks on screen, against the norms.

    Web processes call it without the engine's shape model (loading torch per web
    worker is not worth it for a live preview), so the shape-model finding is only
    computed by the worker at inference time; every ordering and range rule runs here.
    """
    points = np.array([[lm["x"], lm["y"]] for lm in landmarks], dtype=float)
    return analyse_points(
        points=points,
        spacing=study.spacing_mm,
        policy=routing_policy_current(),
        shape_model=None,
        width=study.cols,
    )


def confirmation_reasons(*, task: ReviewTask) -> list[str]:
    """Why accepting this case needs an explicit confirmation (empty: it does not):
    it is urgent, or the model's result carries a high-severity finding."""
    out = []
    if task.priority == Priority.URGENT:
        out.append("the case is urgent")
    high = [f for f in (task.prediction.findings or []) if f.get("severity") == "high"]
    if high:
        out.append(f"{len(high)} high-severity finding(s): " + ", ".join(
            sorted({reason_label(f.get("code", "")) for f in high})
        ))  # fmt: skip
    return out


def review_decide(
    *,
    user,
    study: Study,
    action: str,
    landmarks_raw=None,
    reason: str = "",
    confirmed: bool = False,
    ip: str | None = None,
) -> Review:
    """Accept (corrected if any landmark moved) or reject a claimed case. Closes the task,
    marks the study reviewed and stores before/after, reviewer and time spent.

    Accepting an urgent case or one with high findings needs ``confirmed``."""
    reason = (reason or "").strip()[:500]
    if action not in ("accept", "reject"):
        raise InvalidInput("invalid_action", "action must be accept or reject.")
    if action == "reject" and not reason:
        raise InvalidInput(
            "reason_required", "Say why the image is unusable.", details={"reason": "required"}
        )
    now = timezone.now()
    with transaction.atomic():
        task = (
            ReviewTask.objects.select_for_update()
            .select_related("prediction")
            .filter(study=study)
            .first()
        )
        if task is None or task.status == TaskStatus.DONE:
            raise Conflict("not_open", "This case is already decided.")
        if not _may_work(user, task):
            raise Forbidden(
                "permission_denied",
                "Only a senior radiologist or an admin may close an escalated case.",
            )
        if task.status != TaskStatus.CLAIMED or task.claimed_by_id != user.pk:
            raise Conflict("not_claimed", "Claim the case before deciding it.")
        if action == "accept" and not confirmed:
            why = confirmation_reasons(task=task)
            if why:
                raise InvalidInput(
                    "confirmation_required",
                    "Confirm the acceptance: " + "; ".join(why) + ".",
                    details={"confirmed": "required"},
                )
        before = task.prediction.landmarks
        if action == "reject":
            outcome, after = ReviewOutcome.REJECTED, []
        else:
            after = landmarks_clean(raw=landmarks_raw, study=study, before=before)
            moved = any(lm.get("corrected") for lm in after)
            outcome = ReviewOutcome.CORRECTED if moved else ReviewOutcome.ACCEPTED
        spent = (now - task.claimed_at).total_seconds() if task.claimed_at else 0.0
        review = Review.objects.create(
            study=study,
            prediction=task.prediction,
            reviewer=user,
            outcome=outcome,
            landmarks_before=before,
            landmarks_after=after,
            reason=reason,
            time_spent_s=max(0.0, spent),
        )
        task.status = TaskStatus.DONE
        task.closed_at = now
        task.save(update_fields=["status", "closed_at"])
        Study.objects.filter(pk=study.pk).update(status=StudyStatus.REVIEWED, updated_at=now)
        CaseEvent.objects.create(
            study=study, kind=CaseEventKind.DECIDED, actor=user, level=task.level,
            message=str(outcome.label),
        )  # fmt: skip
    audit_record(
        actor=user,
        action=AuditAction.CASE_DECIDE,
        target_type="study",
        target_id=str(study.public_id),
        ip=ip,
        details={
            "outcome": str(outcome),
            "level": task.level,
            "moved": [lm["abbreviation"] for lm in after if lm.get("corrected")],
            "time_spent_s": round(review.time_spent_s, 1),
        },
    )
    return review
