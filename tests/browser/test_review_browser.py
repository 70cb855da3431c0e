"""The review workflow in a real browser (chromium via Playwright)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from apps.accounts.choices import Role
from apps.accounts.services import api_token_create
from apps.clinical.choices import EscalationLevel, Priority, StudyStatus
from apps.clinical.models import ReviewTask
from apps.clinical.services.escalation import review_task_escalate_overdue
from apps.clinical.services.intake import study_receive
from mahtqa.engine.phantoms import phantom_dicom
from tests.browser.conftest import drag_landmark, login
from tests.clinical.review_factories import NAMES, make_case
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _phantom_case(submitter, priority=Priority.NORMAL):
    data, phantom = phantom_dicom(seed=11)
    study, _ = study_receive(user=submitter, data=data)
    study.status = StudyStatus.IN_REVIEW
    study.save()
    sr, sc = phantom.spacing_mm
    rows = []
    for (abbr, name), (x, y) in zip(NAMES.items(), phantom.points, strict=True):
        rows.append({"name": name, "abbreviation": abbr, "x": round(float(x), 2),
                     "y": round(float(y), 2), "x_mm": round(x * sc, 2), "y_mm": round(y * sr, 2),
                     "confidence": 0.35 if abbr == "A" else 0.9})  # fmt: skip
    return make_case(study=study, landmarks=rows, priority=priority)


def test_radiologist_drags_a_landmark_accepts_and_the_api_sees_it(
    live_server, page, make_user, artifacts_dir
):
    pacs = make_user(Role.API_CLIENT)
    _, key = api_token_create(user=pacs, name="browser-test")
    rad = make_user(Role.RADIOLOGIST)
    task = _phantom_case(pacs)
    before = {lm["abbreviation"]: lm for lm in task.prediction.landmarks}

    login(page, live_server.url, rad.username, PASSWORD, "/clinical/queue/")
    assert page.url.endswith("/clinical/queue/")
    page.click("#next-case")
    page.wait_for_url(f"**/clinical/cases/{task.study.public_id}/")
    page.wait_for_selector("g.lm[data-abbr=A] circle.ring")
    page.wait_for_function("document.querySelector('#viewer image').getBBox().width > 0")
    assert page.locator("g.lm").count() == 7
    assert page.locator("g.lm[data-abbr=A] circle.ring").get_attribute("fill") == "#dc2626"  # low
    assert page.locator("g.lm[data-abbr=S] circle.ring").get_attribute("fill") == "#16a34a"
    page.screenshot(path=str(artifacts_dir / "review-screen.png"), full_page=True)

    drag_landmark(page, "A", 40, 30)
    assert "Correct, accept & next" in page.inner_text("#btn-accept")
    x_after_drag = float(page.inner_text("tr[data-abbr=A] .xy").split(",")[0])
    assert x_after_drag > before["A"]["x"] + 5
    page.keyboard.down("Shift")
    page.keyboard.press("ArrowLeft")  # 10 px
    page.keyboard.up("Shift")
    page.keyboard.press("ArrowLeft")  # 1 px
    x_after_keys = float(page.inner_text("tr[data-abbr=A] .xy").split(",")[0])
    assert x_after_keys == pytest.approx(x_after_drag - 11, abs=0.05)
    page.screenshot(path=str(artifacts_dir / "review-screen-corrected.png"), full_page=True)

    page.keyboard.press("a")  # accept (a correction, since A moved); the queue is then empty
    page.wait_for_url("**/clinical/queue/")
    assert "corrected" in page.inner_text(".messages").lower()

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    body = api.get(f"/api/v1/studies/{task.study.public_id}/").json()
    assert body["status"] == "reviewed"
    assert body["review"]["outcome"] == "corrected"
    final = {lm["abbreviation"]: lm for lm in body["review"]["landmarks"]}
    assert final["A"]["x"] == pytest.approx(x_after_keys, abs=0.05)
    assert final["A"]["confidence"] is None
    assert final["S"]["x"] == before["S"]["x"]


def test_an_overdue_urgent_case_reaches_the_seniors_queue(live_server, page, make_user):
    pacs = make_user(Role.API_CLIENT)
    task = make_case(priority=Priority.URGENT, due_in=timedelta(seconds=1))
    task.study.submitted_by = pacs
    task.study.save()
    time.sleep(1.5)  # the SLA passes
    assert review_task_escalate_overdue() == 1  # what beat runs every minute
    assert ReviewTask.objects.get(pk=task.pk).level == EscalationLevel.SENIOR
    senior = make_user(Role.SENIOR_RADIOLOGIST)
    login(page, live_server.url, senior.username, PASSWORD, "/clinical/escalations/")
    row = page.locator(f"tr[data-study='{task.study.public_id}']")
    assert row.count() == 1
    assert "Urgent" in row.inner_text()
    assert page.inner_text("[data-count=escalated]") == "1"
    row.locator("a").first.click()
    page.wait_for_selector("ol.timeline")
    assert "Overdue: escalated automatically" in page.inner_text("ol.timeline")


def test_a_radiologist_cannot_open_the_threshold_page(live_server, page, make_user):
    rad = make_user(Role.RADIOLOGIST)
    login(page, live_server.url, rad.username, PASSWORD)
    assert page.locator("nav >> text=Thresholds").count() == 0
    response = page.goto(f"{live_server.url}/clinical/thresholds/")
    assert response.status == 403


def test_an_api_token_opens_no_page(live_server, browser, make_user):
    pacs = make_user(Role.API_CLIENT)
    _, key = api_token_create(user=pacs, name="browser-test")
    context = browser.new_context(extra_http_headers={"Authorization": f"Token {key}"})
    try:
        pg = context.new_page()
        for path in ("/clinical/queue/", "/clinical/thresholds/", "/clinical/audit/", "/"):
            pg.goto(f"{live_server.url}{path}")
            assert "/accounts/login/" in pg.url, path
        api = pg.request.get(f"{live_server.url}/api/v1/studies/")
        assert api.status == 200  # the same token does work on the API
    finally:
        context.close()


def test_r_and_e_open_the_reason_box_without_typing_into_it(live_server, page, make_user):
    """Issue 11: pressing R typed "r" into the reason (stored reasons read "eSpacing...")."""
    pacs = make_user(Role.API_CLIENT)
    rad = make_user(Role.RADIOLOGIST)
    task = _phantom_case(pacs)
    login(page, live_server.url, rad.username, PASSWORD, "/clinical/queue/")
    page.click("#next-case")
    page.wait_for_url(f"**/clinical/cases/{task.study.public_id}/")
    page.wait_for_selector("g.lm[data-abbr=A] circle.ring")
    page.locator("#viewer").click(position={"x": 5, "y": 5})  # focus off any field
    page.keyboard.press("r")
    reason = page.locator("textarea[name=reason]")
    reason.wait_for(state="visible")
    assert reason.evaluate("el => el === document.activeElement")
    assert reason.input_value() == ""
    page.keyboard.type("Spacing looks wrong")
    assert reason.input_value() == "Spacing looks wrong"
