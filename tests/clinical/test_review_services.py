"""Review services: claiming order, decisions, idle claims, recomputation, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.choices import Role
from apps.clinical.choices import (
    AuditAction,
    CaseEventKind,
    EscalationLevel,
    Priority,
    ReviewOutcome,
    StudyStatus,
    TaskStatus,
)
from apps.clinical.models import AuditEvent, CaseEvent, ReviewTask
from apps.clinical.serializers import study_payload
from apps.clinical.services.review import (
    landmarks_clean,
    review_decide,
    review_recompute,
    review_task_claim,
    review_task_claim_next,
    review_task_release_idle,
)
from apps.core.errors import Conflict, Forbidden, InvalidInput
from apps.core.exceptions import domain_status
from tests.clinical.review_factories import landmark_rows, make_case

pytestmark = pytest.mark.django_db


def _moved(dx: float = 25.0, abbr: str = "N") -> list[dict]:
    rows = landmark_rows()
    for r in rows:
        if r["abbreviation"] == abbr:
            r["x"] += dx
    return [{"abbreviation": r["abbreviation"], "x": r["x"], "y": r["y"]} for r in rows]


def test_next_case_is_urgent_first_then_oldest(make_user):
    old_normal = make_case(age=timedelta(hours=5))
    new_normal = make_case(age=timedelta(hours=1))
    urgent = make_case(priority=Priority.URGENT, age=timedelta(minutes=2))
    got = [review_task_claim_next(user=make_user(Role.RADIOLOGIST)) for _ in range(4)]
    assert [t.pk if t else None for t in got] == [urgent.pk, old_normal.pk, new_normal.pk, None]


def test_a_reviewer_holding_a_claim_gets_it_back(radiologist):
    first = make_case(age=timedelta(hours=2))
    make_case(age=timedelta(hours=1))
    assert review_task_claim_next(user=radiologist).pk == first.pk
    assert review_task_claim_next(user=radiologist).pk == first.pk
    assert ReviewTask.objects.filter(status=TaskStatus.CLAIMED).count() == 1


def test_radiologists_never_get_escalated_cases(radiologist, senior):
    esc = make_case(level=EscalationLevel.SENIOR)
    assert review_task_claim_next(user=radiologist) is None
    with pytest.raises(Forbidden) as err:
        review_task_claim_next(user=radiologist, escalated=True)
    assert domain_status(err.value) == 403
    with pytest.raises(Forbidden) as err:
        review_task_claim(user=radiologist, study=esc.study)
    assert domain_status(err.value) == 403
    assert review_task_claim_next(user=senior, escalated=True).pk == esc.pk


def test_claiming_a_case_held_by_someone_else_is_refused(radiologist, make_user):
    task = make_case()
    review_task_claim(user=radiologist, study=task.study)
    with pytest.raises(Conflict) as err:
        review_task_claim(user=make_user(Role.RADIOLOGIST), study=task.study)
    assert err.value.code == "claimed"


def test_accept_unchanged_stores_before_after_time_and_reviews_the_study(radiologist):
    task = make_case()
    review_task_claim_next(user=radiologist)
    ReviewTask.objects.filter(pk=task.pk).update(claimed_at=timezone.now() - timedelta(seconds=42))
    rows = [{"abbreviation": r["abbreviation"], "x": r["x"], "y": r["y"]} for r in landmark_rows()]
    review = review_decide(
        user=radiologist, study=task.study, action="accept", landmarks_raw=rows, ip="10.0.0.5"
    )
    task.refresh_from_db()
    task.study.refresh_from_db()
    assert review.outcome == ReviewOutcome.ACCEPTED
    assert review.reviewer == radiologist
    assert 41 <= review.time_spent_s < 60
    assert review.landmarks_before == landmark_rows()
    assert [r["confidence"] for r in review.landmarks_after] == [0.3] * 7
    assert task.status == TaskStatus.DONE
    assert task.closed_at is not None
    assert task.study.status == StudyStatus.REVIEWED
    entry = AuditEvent.objects.get(action=AuditAction.CASE_DECIDE)
    assert entry.ip == "10.0.0.5"
    assert entry.details["outcome"] == "accepted"


def test_moving_a_landmark_makes_a_correction_the_api_result_carries(radiologist):
    task = make_case()
    review_task_claim_next(user=radiologist)
    review = review_decide(
        user=radiologist, study=task.study, action="accept", landmarks_raw=_moved(25.0)
    )
    assert review.outcome == ReviewOutcome.CORRECTED
    n_after = next(r for r in review.landmarks_after if r["abbreviation"] == "N")
    assert n_after["x"] == 1405.0
    assert n_after["confidence"] is None
    assert n_after["corrected"]
    assert n_after["x_mm"] == pytest.approx(140.5)
    payload = study_payload(task.study, visibility="owner")
    assert payload["review"]["outcome"] == "corrected"
    api_n = next(r for r in payload["review"]["landmarks"] if r["abbreviation"] == "N")
    assert api_n["x"] == 1405.0


def test_reject_needs_a_reason_and_keeps_no_landmarks(radiologist):
    task = make_case()
    review_task_claim_next(user=radiologist)
    with pytest.raises(InvalidInput) as err:
        review_decide(user=radiologist, study=task.study, action="reject", reason="  ")
    assert err.value.code == "reason_required"
    review = review_decide(
        user=radiologist, study=task.study, action="reject", reason="motion blur"
    )
    assert review.outcome == ReviewOutcome.REJECTED
    assert review.landmarks_after == []
    assert study_payload(task.study, visibility="owner")["review"]["reason"] == "motion blur"


def test_only_the_claimant_may_decide_and_only_once(radiologist, make_user):
    task = make_case()
    other = make_user(Role.RADIOLOGIST)
    with pytest.raises(Conflict) as err:
        review_decide(user=radiologist, study=task.study, action="accept", landmarks_raw=[])
    assert err.value.code == "not_claimed"
    review_task_claim_next(user=radiologist)
    with pytest.raises(Conflict) as err:
        review_decide(user=other, study=task.study, action="reject", reason="x")
    assert err.value.code == "not_claimed"
    review_decide(user=radiologist, study=task.study, action="reject", reason="x")
    with pytest.raises(Conflict) as err:
        review_decide(user=radiologist, study=task.study, action="reject", reason="x")
    assert err.value.code == "not_open"


def test_a_radiologist_cannot_close_an_escalated_case(radiologist):
    task = make_case(level=EscalationLevel.SENIOR)
    ReviewTask.objects.filter(pk=task.pk).update(status=TaskStatus.CLAIMED, claimed_by=radiologist)
    with pytest.raises(Forbidden) as err:
        review_decide(user=radiologist, study=task.study, action="reject", reason="x")
    assert domain_status(err.value) == 403


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda rows: rows[:-1], "invalid_landmarks"),
        (lambda rows: [{**r, "x": 5000} if r["abbreviation"] == "S" else r for r in rows], None),
        (lambda rows: [{**r, "y": "nan"} if r["abbreviation"] == "S" else r for r in rows], None),
        (lambda rows: [{**r, "abbreviation": "Xx"} if r["abbreviation"] == "S" else r
                       for r in rows], None),
    ],
)  # fmt: skip
def test_landmarks_from_the_screen_are_validated(change, code):
    task = make_case()
    with pytest.raises(InvalidInput) as err:
        landmarks_clean(raw=change(landmark_rows()), study=task.study, before=landmark_rows())
    assert err.value.code == "invalid_landmarks"


def test_recompute_follows_the_moved_landmark():
    task = make_case()
    before = landmarks_clean(raw=landmark_rows(), study=task.study, before=landmark_rows())
    after = landmarks_clean(raw=_moved(-120.0, "A"), study=task.study, before=landmark_rows())
    m0, f0 = review_recompute(study=task.study, landmarks=before)
    m1, _ = review_recompute(study=task.study, landmarks=after)
    assert m0["SNA"]["value"] == pytest.approx(78.3, abs=0.1)
    assert m1["SNA"]["value"] < m0["SNA"]["value"] - 3
    assert m1["SNA"]["norm_mean"] == 82
    assert f0 == []


def test_idle_claims_return_to_the_queue(radiologist, make_user):
    stale = make_case(age=timedelta(hours=3))
    fresh = make_case(age=timedelta(hours=2))
    review_task_claim_next(user=radiologist)
    review_task_claim_next(user=make_user(Role.RADIOLOGIST))
    ReviewTask.objects.filter(pk=stale.pk).update(touched_at=timezone.now() - timedelta(minutes=31))
    assert review_task_release_idle(idle_minutes=30) == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == TaskStatus.OPEN
    assert stale.claimed_by is None
    assert fresh.status == TaskStatus.CLAIMED
    assert CaseEvent.objects.filter(study=stale.study, kind=CaseEventKind.CLAIM_EXPIRED).exists()
    assert review_task_release_idle(idle_minutes=30) == 0


def test_claims_are_audited(radiologist):
    task = make_case()
    review_task_claim_next(user=radiologist, ip="192.0.2.1")
    entry = AuditEvent.objects.get(action=AuditAction.CASE_CLAIM)
    assert entry.actor == radiologist
    assert entry.target_id == str(task.study.public_id)
    assert entry.ip == "192.0.2.1"
