"""The review workstation in a real browser at common screen sizes (issue 11).

Screenshots go to var/artifacts/ (kept by CI as artifacts).
"""

from __future__ import annotations

import pytest

from apps.accounts.choices import Role
from apps.clinical.choices import Priority, ReviewOutcome, StudyStatus
from apps.clinical.models import Review
from apps.clinical.services.intake import study_receive
from mahtqa.engine.phantoms import phantom_dicom
from tests.browser.conftest import drag_landmark, login
from tests.clinical.review_factories import NAMES, make_case
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = [(1366, 768), (1920, 1080)]
ISBI_SIZE = (2400, 1935)  # rows, cols of an ISBI 2015 cephalogram


def _case(submitter, *, seed=11, priority=Priority.NORMAL, findings=None):
    rows_px, cols_px = ISBI_SIZE
    data, phantom = phantom_dicom(seed=seed, height=rows_px, width=cols_px)
    study, _ = study_receive(user=submitter, data=data)
    study.status = StudyStatus.IN_REVIEW
    study.save()
    sr, sc = phantom.spacing_mm
    rows = [
        {"name": name, "abbreviation": abbr, "x": round(float(x), 2), "y": round(float(y), 2),
         "x_mm": round(x * sc, 2), "y_mm": round(y * sr, 2),
         "confidence": 0.35 if abbr == "A" else 0.9}
        for (abbr, name), (x, y) in zip(NAMES.items(), phantom.points, strict=True)
    ]  # fmt: skip
    task = make_case(study=study, landmarks=rows, priority=priority)
    if findings is not None:
        task.prediction.findings = findings
        task.prediction.save(update_fields=["findings"])
    return task


def _open_next(page, task):
    page.click("#next-case")
    page.wait_for_url(f"**/clinical/cases/{task.study.public_id}/")
    page.wait_for_selector("g.lm[data-abbr=A] circle.ring")
    page.wait_for_function("document.querySelector('#viewer').dataset.loaded === 'full'")


def _inside(box, width, height):
    return (
        box["x"] >= -0.5
        and box["y"] >= -0.5
        and box["x"] + box["width"] <= width + 0.5
        and box["y"] + box["height"] <= height + 0.5
    )


@pytest.mark.parametrize(("width", "height"), SCREENS)
def test_the_whole_image_and_accept_fit_the_screen_without_scrolling(
    live_server, browser, make_user, artifacts_dir, width, height
):
    pacs = make_user(Role.API_CLIENT)
    rad = make_user(Role.RADIOLOGIST)
    task = _case(pacs)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        seen = []
        page.on("request", lambda r: "image.png" in r.url and seen.append(r.url))
        login(page, live_server.url, rad.username, PASSWORD, "/clinical/queue/")
        _open_next(page, task)
        assert "size=preview" in seen[0]
        assert "size=full" in seen[1]
        image = page.locator("#radiograph").bounding_box()
        accept = page.locator("#btn-accept").bounding_box()
        assert _inside(image, width, height), image
        assert _inside(accept, width, height), accept
        assert page.evaluate("document.scrollingElement.scrollHeight") <= height
        # no black bars: the viewer has the image's shape, and the image fills it
        viewer = page.locator("#viewer").bounding_box()
        assert image["height"] == pytest.approx(viewer["height"], abs=2)
        assert image["width"] == pytest.approx(viewer["width"], abs=2)
        assert image["height"] >= height - 150  # the header, case bar and toolbar are compact
        for abbr in NAMES:
            box = page.locator(f"g.lm[data-abbr='{abbr}'] circle.ring").bounding_box()
            assert _inside(box, width, height), abbr
        page.screenshot(path=str(artifacts_dir / f"workstation-{width}x{height}.png"))
    finally:
        context.close()


def _label_boxes(page):
    return page.evaluate(
        """[...document.querySelectorAll('text.lm-label')].map(t => {
             const r = t.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"""
    )


def test_labels_do_not_overlap_each_other(live_server, page, make_user):
    pacs = make_user(Role.API_CLIENT)
    rad = make_user(Role.RADIOLOGIST)
    task = _case(pacs)
    login(page, live_server.url, rad.username, PASSWORD, "/clinical/queue/")
    _open_next(page, task)
    boxes = _label_boxes(page)
    assert len(boxes) == 7
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            dx = min(a[2], b[2]) - max(a[0], b[0])
            dy = min(a[3], b[3]) - max(a[1], b[1])
            assert dx <= 1 or dy <= 1, (a, b)


def _xy(page, abbr):
    x, y = page.inner_text(f"tr[data-abbr={abbr}] .xy").split(",")
    return float(x), float(y)


@pytest.mark.parametrize(("width", "height"), SCREENS)
def test_drag_nudge_undo_reset_tracing_and_accept_and_next(
    live_server, browser, make_user, artifacts_dir, width, height
):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    try:
        _drag_nudge_undo(live_server, context.new_page(), make_user, artifacts_dir, width)
    finally:
        context.close()


def _drag_nudge_undo(live_server, page, make_user, artifacts_dir, width):
    pacs = make_user(Role.API_CLIENT)
    rad = make_user(Role.RADIOLOGIST)
    first = _case(pacs, seed=11)
    second = _case(pacs, seed=12)
    login(page, live_server.url, rad.username, PASSWORD, "/clinical/queue/")
    _open_next(page, first)
    ai = _xy(page, "A")
    sna_before = page.text_content("[data-angle=SNA]")
    assert page.locator("line[data-line=sn]").count() == 1

    drag_landmark(page, "A", 30, 8)
    dragged = _xy(page, "A")
    assert dragged[0] > ai[0] + 5
    assert page.locator("circle[data-ghost=A]").count() == 1  # the AI position stays visible
    assert "AI 0.35" in page.inner_text("tr[data-abbr=A] .conf")  # and its confidence
    assert page.text_content("[data-angle=SNA]") != sna_before  # the tracing follows the point
    page.screenshot(path=str(artifacts_dir / f"workstation-moved-{width}.png"))

    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert _xy(page, "A")[0] == pytest.approx(dragged[0] + 2, abs=0.05)
    page.keyboard.press("Control+z")  # the two nudges are one step
    assert _xy(page, "A")[0] == pytest.approx(dragged[0], abs=0.05)
    page.keyboard.press("Control+z")
    assert _xy(page, "A") == pytest.approx(ai, abs=0.05)
    assert page.locator("circle[data-ghost=A]").count() == 0
    page.keyboard.press("Control+Shift+z")
    assert _xy(page, "A")[0] == pytest.approx(dragged[0], abs=0.05)
    page.keyboard.press("Backspace")  # back to the AI position
    assert _xy(page, "A") == pytest.approx(ai, abs=0.05)
    page.keyboard.press("Control+z")
    assert _xy(page, "A")[0] == pytest.approx(dragged[0], abs=0.05)

    page.keyboard.press("t")
    assert page.locator("line[data-line=sn]").count() == 0
    page.keyboard.press("t")
    assert page.locator("line[data-line=sn]").count() == 1

    page.keyboard.press("a")  # accept & next: the second case, claimed
    page.wait_for_url(f"**/clinical/cases/{second.study.public_id}/")
    page.wait_for_selector("#btn-accept")
    assert "corrected" in page.inner_text(".messages").lower()
    review = Review.objects.get(study=first.study)
    assert review.outcome == ReviewOutcome.CORRECTED
    final = {lm["abbreviation"]: lm for lm in review.landmarks_after}
    assert final["A"]["x"] == pytest.approx(dragged[0], abs=0.05)


def test_an_urgent_case_asks_before_accepting(live_server, page, make_user):
    pacs = make_user(Role.API_CLIENT)
    rad = make_user(Role.RADIOLOGIST)
    high = [{"code": "order_a_b", "severity": "high", "message": "A below B",
             "landmarks": ["A", "B"]}]  # fmt: skip
    task = _case(pacs, priority=Priority.URGENT, findings=high)
    login(page, live_server.url, rad.username, PASSWORD, "/clinical/queue/")
    _open_next(page, task)
    page.locator("#viewer").click(position={"x": 5, "y": 5})
    page.keyboard.press("a")
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    assert "urgent" in dialog.inner_text()
    assert "A and B out of order" in dialog.inner_text()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert not Review.objects.filter(study=task.study).exists()
    page.keyboard.press("a")
    dialog.wait_for(state="visible")
    page.keyboard.press("Enter")
    page.wait_for_url("**/clinical/queue/")
    assert Review.objects.get(study=task.study).outcome == ReviewOutcome.ACCEPTED


def test_a_radiologist_works_a_queue_of_20_cases_from_the_keyboard(live_server, page, make_user):
    """Done-when of issue 11: 20 cases, keyboard only, never scrolling, ending on the queue."""
    pacs = make_user(Role.API_CLIENT)
    rad = make_user(Role.RADIOLOGIST)
    tasks = []
    for seed in range(20):
        data, phantom = phantom_dicom(seed=100 + seed)
        study, _ = study_receive(user=pacs, data=data)
        study.status = StudyStatus.IN_REVIEW
        study.save()
        rows = [
            {"name": name, "abbreviation": abbr, "x": round(float(x), 2), "y": round(float(y), 2),
             "x_mm": None, "y_mm": None, "confidence": 0.9}
            for (abbr, name), (x, y) in zip(NAMES.items(), phantom.points, strict=True)
        ]  # fmt: skip
        tasks.append(make_case(study=study, landmarks=rows))
    login(page, live_server.url, rad.username, PASSWORD, "/clinical/queue/")
    page.click("#next-case")
    for i, task in enumerate(tasks):
        page.wait_for_url(f"**/clinical/cases/{task.study.public_id}/")
        page.wait_for_selector("g.lm[data-abbr=Gn] circle.ring")
        assert page.evaluate("document.scrollingElement.scrollHeight <= innerHeight"), i
        if i == 3:  # one correction along the way, by keyboard
            page.keyboard.press("2")
            page.keyboard.press("Shift+ArrowUp")
        page.keyboard.press("a")
    page.wait_for_url("**/clinical/queue/")
    outcomes = [Review.objects.get(study=t.study).outcome for t in tasks]
    assert outcomes.count(ReviewOutcome.CORRECTED) == 1
    assert outcomes.count(ReviewOutcome.ACCEPTED) == 19
