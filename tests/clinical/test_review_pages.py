"""Review pages: queues, htmx fragments, the review screen."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.choices import Role
from apps.clinical.choices import AuditAction, EscalationLevel, Priority, StudyStatus, TaskStatus
from apps.clinical.models import AuditEvent, ReviewTask
from tests.clinical.review_factories import landmark_rows, make_case

pytestmark = pytest.mark.django_db


# Who may open which page (every role, anonymous, tokens): tests/test_permissions.py.


def test_queue_lists_urgent_first_then_oldest_with_sla(radiologist_client):
    old = make_case(age=timedelta(hours=30), due_in=-timedelta(hours=6))
    new = make_case(age=timedelta(minutes=10))
    urgent = make_case(priority=Priority.URGENT, age=timedelta(minutes=1))
    make_case(level=EscalationLevel.SENIOR)  # not in the radiologists' queue
    html = radiologist_client.get(reverse("clinical:review_queue")).content.decode()
    order = [html.index(str(t.study.public_id)[:8]) for t in (urgent, old, new)]
    assert order == sorted(order)
    assert html.count('class="prio-') == 3
    assert "overdue by" in html
    assert "due in" in html


def test_queue_filters_and_htmx_fragment(radiologist_client):
    urgent = make_case(priority=Priority.URGENT)
    ood = make_case(
        reasons=[{"code": "out_of_distribution", "severity": "warning", "message": "x"}]
    )
    old = make_case(age=timedelta(hours=30))
    url = reverse("clinical:review_queue")

    def ids(**params) -> set[str]:
        r = radiologist_client.get(url, params, HTTP_HX_REQUEST="true")
        assert "<html" not in r.content.decode()  # fragment only
        return {t.study.public_id.hex[:8] for t in (urgent, ood, old)
                if str(t.study.public_id)[:8] in r.content.decode()}  # fmt: skip

    assert ids(priority="urgent") == {urgent.study.public_id.hex[:8]}
    assert ids(finding="out_of_distribution") == {ood.study.public_id.hex[:8]}
    assert ids(age="24h") == {old.study.public_id.hex[:8]}
    mv = ood.prediction.model_version_id
    assert ids(model_version=str(mv)) == {ood.study.public_id.hex[:8]}


def test_counts_fragment_polls_and_counts(senior_client):
    make_case(priority=Priority.URGENT)
    make_case(due_in=-timedelta(minutes=1))
    make_case(level=EscalationLevel.SENIOR)
    r = senior_client.get(reverse("clinical:queue_counts"))
    html = r.content.decode()
    assert 'hx-trigger="every 10s"' in html
    assert 'data-count="queue">2<' in html
    assert 'data-count="queue_urgent">1<' in html
    assert 'data-count="queue_overdue">1<' in html
    assert 'data-count="escalated">1<' in html


def test_next_case_claims_and_opens_the_review_screen(radiologist_client):
    case = make_case()
    r = radiologist_client.post(reverse("clinical:next_case"))
    assert r.status_code == 302
    assert r["Location"] == reverse("clinical:review", args=[case.study.public_id])
    case.refresh_from_db()
    assert case.status == TaskStatus.CLAIMED
    assert case.claimed_by == radiologist_client.user
    page = radiologist_client.get(r["Location"]).content.decode()
    assert 'id="decide-form"' in page
    assert case.study.sop_instance_uid in page  # clinicians see the identified study
    empty = radiologist_client.post(reverse("clinical:next_case"), HTTP_HX_REQUEST="true")
    assert empty["HX-Redirect"] == r["Location"]  # still holds it: same case again


def test_engineer_sees_the_case_deidentified_read_only_with_an_issue_link(engineer_client):
    case = make_case()
    html = engineer_client.get(reverse("clinical:review", args=[case.study.public_id])).content
    html = html.decode()
    assert case.study.deid_sop_instance_uid in html
    assert case.study.sop_instance_uid not in html
    assert 'id="decide-form"' not in html
    assert 'data-editable="0"' in html
    assert "Read-only (de-identified view)" in html
    assert f"study={case.study.public_id}" in html or "data-issue-link-point" in html
    entry = AuditEvent.objects.get(action=AuditAction.CASE_OPEN_DEID)
    assert entry.actor == engineer_client.user


def test_opening_a_case_with_phi_is_audited_with_the_ip(radiologist_client):
    case = make_case()
    radiologist_client.get(
        reverse("clinical:review", args=[case.study.public_id]), REMOTE_ADDR="198.51.100.7"
    )
    entry = AuditEvent.objects.get(action=AuditAction.CASE_OPEN_PHI)
    assert entry.ip == "198.51.100.7"
    assert entry.target_id == str(case.study.public_id)


def test_recompute_returns_the_measurement_fragment(radiologist_client):
    case = make_case()
    radiologist_client.post(reverse("clinical:next_case"))
    rows = landmark_rows()
    for r in rows:
        if r["abbreviation"] == "A":
            r["x"] -= 120
    resp = radiologist_client.post(
        reverse("clinical:recompute", args=[case.study.public_id]),
        {"landmarks": json.dumps(rows)},
        HTTP_HX_REQUEST="true",
    )
    html = resp.content.decode()
    assert resp.status_code == 200
    assert 'data-recomputed="1"' in html
    assert 'data-measure="SNA"' in html
    assert "78.3" not in html  # the unmoved value
    bad = radiologist_client.post(
        reverse("clinical:recompute", args=[case.study.public_id]), {"landmarks": "[]"}
    )
    assert bad.status_code == 400


def test_deciding_through_the_page_reaches_the_api(radiologist_client, api_client_user):
    from rest_framework.test import APIClient

    from apps.accounts.services import api_token_create

    case = make_case()
    case.study.submitted_by = api_client_user
    case.study.save()
    radiologist_client.post(reverse("clinical:next_case"))
    rows = landmark_rows()
    rows[1]["y"] += 12  # N
    r = radiologist_client.post(
        reverse("clinical:decide", args=[case.study.public_id]),
        {"action": "accept", "landmarks": json.dumps(rows)},
    )
    assert r.status_code == 302
    assert r["Location"] == reverse("clinical:review_queue")
    _, key = api_token_create(user=api_client_user, name="t")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    body = api.get(f"/api/v1/studies/{case.study.public_id}/").json()
    assert body["status"] == StudyStatus.REVIEWED
    assert body["review"]["outcome"] == "corrected"
    assert body["review"]["landmarks"][1]["y"] == 732.0


def test_reject_without_reason_shows_an_error_and_keeps_the_claim(radiologist_client):
    case = make_case()
    radiologist_client.post(reverse("clinical:next_case"))
    url = reverse("clinical:decide", args=[case.study.public_id])
    r = radiologist_client.post(url, {"action": "reject", "reason": ""}, follow=True)
    assert "Say why the image is unusable" in r.content.decode()
    assert ReviewTask.objects.get(pk=case.pk).status == TaskStatus.CLAIMED


def test_escalate_from_the_page(radiologist_client, senior_client):
    case = make_case()
    radiologist_client.post(reverse("clinical:next_case"))
    radiologist_client.post(
        reverse("clinical:decide", args=[case.study.public_id]),
        {"action": "escalate", "reason": "odd anatomy"},
    )
    assert ReviewTask.objects.get(pk=case.pk).level == EscalationLevel.SENIOR
    html = senior_client.get(reverse("clinical:escalations")).content.decode()
    assert str(case.study.public_id)[:8] in html


def _count(client, method, url, **kw) -> int:
    with CaptureQueriesContext(connection) as ctx:
        r = getattr(client, method)(url, **kw)
    assert r.status_code in (200, 302)
    return len(ctx.captured_queries)


def test_queue_page_and_next_case_use_a_fixed_number_of_queries(client_for):
    radiologist = client_for(Role.RADIOLOGIST)
    for _ in range(3):
        make_case()
    small = _count(radiologist, "get", reverse("clinical:review_queue"))
    for i in range(60):
        make_case(priority=Priority.URGENT if i % 3 == 0 else Priority.NORMAL)
    large = _count(radiologist, "get", reverse("clinical:review_queue"))
    assert small == large <= 12
    first = _count(radiologist, "post", reverse("clinical:next_case"))
    other = client_for(Role.RADIOLOGIST)
    _count(other, "get", reverse("clinical:review_queue"))
    second = _count(other, "post", reverse("clinical:next_case"))
    assert first == second <= 12
