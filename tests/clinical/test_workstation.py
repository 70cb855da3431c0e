"""The review workstation's server side (issue 11): confirmation, take-over, the patient
card, accept & next, escalation audience, image renditions, reason labels."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from django.urls import reverse

from apps.accounts.choices import Role
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
from apps.clinical.models import AuditEvent, CaseEvent, Review, ReviewTask
from apps.clinical.services.escalation import escalation_audience
from apps.clinical.services.intake import study_receive
from apps.clinical.services.review import (
    confirmation_reasons,
    review_decide,
    review_task_claim,
    review_task_take_over,
)
from apps.core.errors import Conflict, Forbidden, InvalidInput
from mahtqa.imaging.identity import patient_card_read
from mahtqa.imaging.write import write_cr
from tests.clinical.review_factories import make_case
from tests.helpers import outbox_run

pytestmark = pytest.mark.django_db

HIGH = [{"code": "order_a_b", "severity": "high", "message": "A below B", "landmarks": ["A", "B"]}]


def _claimed(user, **kw):
    task = make_case(**kw)
    review_task_claim(user=user, study=task.study)
    return task


def _accept(user, task, **kw):
    return review_decide(
        user=user, study=task.study, action="accept",
        landmarks_raw=task.prediction.landmarks, **kw,
    )  # fmt: skip


# --- confirmation before accepting urgent or high-finding cases ---------------------------


def test_an_urgent_case_is_not_accepted_without_confirmation(radiologist):
    task = _claimed(radiologist, priority=Priority.URGENT)
    with pytest.raises(InvalidInput) as exc:
        _accept(radiologist, task)
    assert exc.value.code == "confirmation_required"
    assert "urgent" in exc.value.message
    assert not Review.objects.filter(study=task.study).exists()
    assert ReviewTask.objects.get(pk=task.pk).status == TaskStatus.CLAIMED
    assert _accept(radiologist, task, confirmed=True).outcome == ReviewOutcome.ACCEPTED


def test_a_high_finding_needs_confirmation_and_a_plain_case_does_not(radiologist):
    task = _claimed(radiologist)
    task.prediction.findings = HIGH
    task.prediction.save(update_fields=["findings"])
    assert confirmation_reasons(task=task) == ["1 high-severity finding(s): A and B out of order"]
    with pytest.raises(InvalidInput):
        _accept(radiologist, task)
    plain = _claimed(radiologist)
    assert confirmation_reasons(task=plain) == []
    assert _accept(radiologist, plain).outcome == ReviewOutcome.ACCEPTED


def test_reject_needs_no_confirmation(radiologist):
    task = _claimed(radiologist, priority=Priority.URGENT)
    review = review_decide(user=radiologist, study=task.study, action="reject", reason="blurred")
    assert review.outcome == ReviewOutcome.REJECTED


def test_the_page_refuses_an_unconfirmed_urgent_accept_and_keeps_the_case(radiologist_client):
    user = radiologist_client.user
    task = _claimed(user, priority=Priority.URGENT)
    url = reverse("clinical:decide", kwargs={"public_id": task.study.public_id})
    body = {"action": "accept", "landmarks": json.dumps(task.prediction.landmarks)}
    r = radiologist_client.post(url, body)
    assert r.status_code == 302
    assert r["Location"] == reverse("clinical:review", kwargs={"public_id": task.study.public_id})
    assert not Review.objects.filter(study=task.study).exists()
    page = radiologist_client.get(r["Location"]).content.decode()
    assert "Confirm the acceptance: the case is urgent." in page
    assert 'data-confirm="the case is urgent"' in page
    r = radiologist_client.post(url, {**body, "confirmed": "1"})
    assert r.status_code == 302
    assert Review.objects.get(study=task.study).outcome == ReviewOutcome.ACCEPTED


# --- accept & next ---------------------------------------------------------------------------


def test_every_decision_opens_the_next_case_of_the_same_queue(radiologist_client):
    user = radiologist_client.user
    first = _claimed(user)
    second = make_case()
    url = reverse("clinical:decide", kwargs={"public_id": first.study.public_id})
    r = radiologist_client.post(
        url, {"action": "accept", "landmarks": json.dumps(first.prediction.landmarks)}
    )
    assert r["Location"] == reverse("clinical:review", kwargs={"public_id": second.study.public_id})
    second.refresh_from_db()
    assert second.status == TaskStatus.CLAIMED
    assert second.claimed_by_id == user.pk
    url = reverse("clinical:decide", kwargs={"public_id": second.study.public_id})
    r = radiologist_client.post(url, {"action": "reject", "reason": "motion blur"})
    assert r["Location"] == reverse("clinical:review_queue")  # nothing left
    assert "No more cases waiting" in radiologist_client.get(r["Location"]).content.decode()


# --- take-over -------------------------------------------------------------------------------


def test_a_senior_takes_over_a_claimed_case_with_a_reason(radiologist, senior):
    task = _claimed(radiologist)
    with pytest.raises(InvalidInput) as exc:
        review_task_take_over(user=senior, study=task.study, reason="  ")
    assert exc.value.code == "reason_required"
    review_task_take_over(user=senior, study=task.study, reason="rad is off sick", ip="10.0.0.5")
    task.refresh_from_db()
    assert task.claimed_by_id == senior.pk
    assert task.status == TaskStatus.CLAIMED
    event = CaseEvent.objects.get(study=task.study, kind=CaseEventKind.TAKEN_OVER)
    assert event.actor_id == senior.pk
    assert event.message == "from rad: rad is off sick"
    audit = AuditEvent.objects.get(action=AuditAction.CASE_TAKEOVER)
    assert audit.details["from"] == "rad"
    assert audit.ip == "10.0.0.5"
    # the former holder can no longer decide it
    with pytest.raises(Conflict) as exc:
        _accept(radiologist, task)
    assert exc.value.code == "not_claimed"


def test_a_radiologist_cannot_take_over_and_an_open_case_is_claimed_instead(
    make_user, radiologist, senior
):
    task = _claimed(radiologist)
    other = make_user(Role.RADIOLOGIST)
    with pytest.raises(Forbidden):
        review_task_take_over(user=other, study=task.study, reason="mine now")
    open_task = make_case()
    with pytest.raises(Conflict) as exc:
        review_task_take_over(user=senior, study=open_task.study, reason="x")
    assert exc.value.code == "not_claimed"


def test_the_take_over_form_shows_for_seniors_only(client_for, radiologist):
    task = _claimed(radiologist)
    url = reverse("clinical:review", kwargs={"public_id": task.study.public_id})
    senior_page = client_for(Role.SENIOR_RADIOLOGIST).get(url).content.decode()
    assert 'id="take-over"' in senior_page
    assert "Held by rad." in senior_page
    assert 'id="take-over"' not in client_for(Role.RADIOLOGIST).get(url).content.decode()
    senior = client_for(Role.SENIOR_RADIOLOGIST)
    take = reverse("clinical:take_over", kwargs={"public_id": task.study.public_id})
    assert senior.post(take, {"reason": ""}).status_code == 302
    assert ReviewTask.objects.get(pk=task.pk).claimed_by_id == radiologist.pk  # no reason: kept
    senior.post(take, {"reason": "urgent and rad is away"})
    assert ReviewTask.objects.get(pk=task.pk).claimed_by_id == senior.user.pk
    assert 'id="decide-form"' in senior.get(url).content.decode()


# --- the patient card ------------------------------------------------------------------------


def _identified_study(user):
    pixels = (np.random.default_rng(1).random((256, 200)) * 4000).astype(np.uint16)
    data = write_cr(
        pixels, patient_name="DOE^JANE", patient_id="MRN-99812",
        extra={"PatientBirthDate": "19800214", "PatientSex": "F", "StudyDate": "20261201",
               "AccessionNumber": "ACC-5521"},
    )  # fmt: skip
    study, _ = study_receive(user=user, data=data)
    study.status = StudyStatus.IN_REVIEW
    study.save()
    return make_case(study=study)


def test_patient_card_reads_the_header():
    pixels = np.zeros((16, 16), np.uint16)
    data = write_cr(pixels, patient_name="DOE^JANE", patient_id="MRN-1",
                    extra={"PatientBirthDate": "19800214", "PatientSex": "F"})  # fmt: skip
    card = patient_card_read(data)
    assert (card.name, card.patient_id, card.birth_date, card.sex) == (
        "DOE, JANE",
        "MRN-1",
        "1980-02-14",
        "female",
    )
    assert patient_card_read(b"not dicom").known is False


def test_clinicians_see_who_the_patient_is_and_engineers_do_not(client_for, api_client_user):
    task = _identified_study(api_client_user)
    url = reverse("clinical:review", kwargs={"public_id": task.study.public_id})
    rad = client_for(Role.RADIOLOGIST)
    page = rad.get(url).content.decode()
    for value in ("DOE, JANE", "MRN-99812", "1980-02-14", "female", "2026-12-01", "ACC-5521"):
        assert value in page, value
    assert "no-store" in rad.get(url)["Cache-Control"]
    eng_page = client_for(Role.ENGINEER).get(url).content.decode()
    for value in ("DOE", "MRN-99812", "1980-02-14", "ACC-5521"):
        assert value not in eng_page, value
    shown = AuditEvent.objects.filter(target_id=str(task.study.public_id)).order_by("id")
    assert [e.details["identity_shown"] for e in shown] == [True, True, False]


# --- escalation: who is told -----------------------------------------------------------------


def test_escalation_says_when_nobody_can_be_notified(radiologist_client):
    user = radiologist_client.user
    task = _claimed(user)
    audience = escalation_audience(level=EscalationLevel.SENIOR)
    assert audience.nobody
    url = reverse("clinical:decide", kwargs={"public_id": task.study.public_id})
    r = radiologist_client.post(url, {"action": "escalate", "reason": "unsure about Me"})
    page = radiologist_client.get(r["Location"]).content.decode()
    assert "Nobody could be notified: no active senior radiologist has an e-mail address" in page
    assert 'class="msg-warning"' in page


def test_escalation_names_who_is_notified(radiologist_client, make_user):
    make_user(Role.SENIOR_RADIOLOGIST, username="dr-senior", email="senior@hospital.example")
    task = _claimed(radiologist_client.user)
    url = reverse("clinical:decide", kwargs={"public_id": task.study.public_id})
    r = radiologist_client.post(url, {"action": "escalate", "reason": "unsure about Me"})
    page = radiologist_client.get(r["Location"]).content.decode()
    assert "Notifying 1 by e-mail (dr-senior)." in page
    assert "senior@hospital.example" not in page
    outbox_run()  # the notification itself: the timeline says what was done
    told = CaseEvent.objects.get(study=task.study, kind=CaseEventKind.NOTIFIED)
    assert told.message == "Notified 1 by e-mail (dr-senior)."


# --- image renditions ------------------------------------------------------------------------


def test_the_preview_is_small_and_the_full_image_is_every_pixel(
    radiologist_client, api_client_user
):
    pixels = (np.random.default_rng(2).random((2400, 1935)) * 4000).astype(np.uint16)
    study, _ = study_receive(user=api_client_user, data=write_cr(pixels))
    url = reverse("clinical:review_image", kwargs={"public_id": study.public_id})
    full = radiologist_client.get(url + "?size=full")
    preview = radiologist_client.get(url + "?size=preview")
    assert full.status_code == 200
    assert preview.status_code == 200
    decode = lambda r: cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_GRAYSCALE)  # noqa: E731
    assert decode(full).shape == (2400, 1935)
    assert decode(preview).shape == (1024, 826)
    assert radiologist_client.get(url + "?size=huge").status_code == 404


def test_a_missing_image_file_is_a_404_not_a_500(radiologist_client):
    task = make_case()  # factory studies have no file in storage
    url = reverse("clinical:review_image", kwargs={"public_id": task.study.public_id})
    r = radiologist_client.get(url + "?size=preview")
    assert r.status_code == 404


# --- reasons read as words -------------------------------------------------------------------


def test_reason_labels():
    assert reason_label("low_confidence") == "Low confidence"
    assert reason_label("range_S-N") == "S-N out of range"
    assert reason_label("order_a_b") == "A and B out of order"
    assert reason_label("something_new") == "something new"


def test_the_queue_and_the_case_show_labels_with_the_code_on_hover(radiologist_client):
    reasons = [
        {"code": "range_S-N", "severity": "high", "message": "S-N is 99 mm"},
        {"code": "low_confidence", "severity": "info", "landmark": "A", "message": "A 0.3"},
        {"code": "low_confidence", "severity": "info", "landmark": "B", "message": "B 0.3"},
        {"code": "low_confidence", "severity": "info", "landmark": "Me", "message": "Me 0.3"},
    ]
    task = make_case(reasons=reasons)
    task.prediction.findings = [{**reasons[0], "landmarks": ["S", "N"]}]
    task.prediction.save(update_fields=["findings"])
    queue = radiologist_client.get("/clinical/queue/").content.decode()
    assert 'title="range_S-N: S-N is 99 mm">S-N out of range</span>' in queue
    assert "Low confidence Me" in queue  # every reason, no ellipsis
    assert "…" not in queue.split('id="queue-table"')[1]
    review_task_claim(user=radiologist_client.user, study=task.study)
    url = reverse("clinical:review", kwargs={"public_id": task.study.public_id})
    page = radiologist_client.get(url).content.decode()
    why = page.split("Why it is here")[1].split("<h2>")[0]
    assert "Low confidence A" in why
    assert "S-N out of range" in why
    # once as a sentence under Findings; on hover only elsewhere (why-here, the S and N rows)
    assert page.count("S-N is 99 mm") == 4
    assert page.count("<strong>high</strong> S-N is 99 mm") == 1
