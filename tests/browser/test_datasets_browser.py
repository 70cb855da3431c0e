"""A dataset in a real browser: register, validate with live progress, read the report,
filter, export, open an image and the issue, and decide a suspect annotation."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings

from apps.accounts.choices import Role
from apps.datasets.models import SuspectAnnotation, ValidationRun
from apps.datasets.services import suspects_find_from_oof, validation_run_step
from mahtqa.cephalometry.isbi import read_seven
from tests.browser.conftest import login
from tests.datasets.conftest import (
    ISBI,
    ISBI_SPACING,
    copy_isbi,
    defect_shift_senior,
    defect_truncate,
    needs_isbi,
)
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), needs_isbi]

CASES = [f"{i:03d}" for i in range(1, 9)]


@pytest.fixture
def roots(tmp_path):
    root = tmp_path / "root"
    copy_isbi(root / "crafted", CASES)
    defect_truncate(root / "crafted", "004")
    partial(defect_shift_senior, case="002", line=1, dx=50.0)(root / "crafted")
    junior = ISBI / "annotations" / "junior"
    rows = [{"case_id": c, "points": read_seven(junior / f"{c}.txt").tolist()} for c in CASES]
    (root / "oof.json").write_text(json.dumps({"cases": rows}))
    with override_settings(MAHTQA_DATASET_ROOTS=[root], MAHTQA_DATASET_STORE=tmp_path / "store",
                           MAHTQA_DATASET_CHUNK=2):  # fmt: skip
        yield root


def test_register_validate_with_progress_and_read_the_report(live_server, page, make_user, roots):
    engineer = make_user(Role.ENGINEER)
    login(page, live_server.url, engineer.username, PASSWORD, "/datasets/")
    page.goto(f"{live_server.url}/datasets/")
    page.fill("input[name=name]", "Crafted")
    page.fill("input[name=path]", "crafted")
    page.fill("input[name=spacing]", ISBI_SPACING)
    page.click("#register-form button[type=submit]")
    page.wait_for_selector("#content-hash")
    assert "Crafted v1" in page.text_content("h1")

    page.click("#validate")
    page.wait_for_selector("#run-progress")
    assert "0 of 8 images checked" in page.text_content("#run-progress")
    run = ValidationRun.objects.get()
    assert validation_run_step(run_id=run.pk) == "step"  # the worker's first chunk
    page.wait_for_function(
        "() => document.querySelector('#run-progress').textContent.includes('2 of 8')"
    )
    while validation_run_step(run_id=run.pk) == "step":
        pass
    page.wait_for_selector("#summary-cards", timeout=10_000)
    assert page.text_content("#integrity-score").strip() == "88 %"  # 7 of 8 readable
    assert page.locator("#findings-table tr.finding").count() > 0

    page.select_option("select[name=severity]", "critical")
    with page.expect_response(lambda r: "severity=critical" in r.url):
        page.click("#findings form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelectorAll('#findings-table tr.finding').length === 1"
    )
    assert page.get_attribute("#findings-table tr.finding", "data-code") == "image_truncated"

    with page.expect_download() as download:
        page.click("text=CSV")
    body = Path(download.value.path()).read_text(encoding="utf-8")
    assert body.splitlines()[0] == "severity,code,image,landmark,annotator,message"
    assert "image_truncated,004" in body

    page.click("#run-issue")
    page.wait_for_selector("#issue-status")
    assert "Crafted v1" in page.text_content("dl")

    page.go_back()
    page.goto(f"{live_server.url}/datasets/versions/{run.version_id}/images/002/")
    assert page.locator("#ds-overlay g.ann").count() == 14
    box = page.locator("#ds-overlay").bounding_box()
    assert box is not None
    assert box["height"] <= page.viewport_size["height"]


def test_confirm_a_suspect_in_place_and_derive_a_corrected_version(
    live_server, page, make_user, roots
):
    from apps.datasets.services import dataset_register_folder

    engineer = make_user(Role.ENGINEER)
    version = dataset_register_folder(path="crafted", name="Suspects", spacing=ISBI_SPACING)
    suspects_find_from_oof(version=version, path="oof.json")
    target = SuspectAnnotation.objects.get(
        version=version, image__key="002", annotator="senior", landmark="N"
    )
    login(
        page,
        live_server.url,
        engineer.username,
        PASSWORD,
        f"/datasets/versions/{version.pk}/suspects/",
    )
    page.goto(f"{live_server.url}/datasets/versions/{version.pk}/suspects/")
    card = page.locator(f"#suspect-{target.pk}")
    card.scroll_into_view_if_needed()  # the thumbnail loads lazily
    page.wait_for_function(
        f"() => document.querySelector('#suspect-{target.pk} img').naturalWidth > 0"
    )
    page.evaluate("window.__noReload = 'still here'")
    card.locator("button[value=confirmed]").click()
    page.wait_for_function(f"() => document.querySelector('#suspect-{target.pk} .status') !== null")
    assert page.evaluate("window.__noReload") == "still here"
    target.refresh_from_db()
    assert (target.status, target.decided_by_id) == ("confirmed", engineer.pk)
    page.click("#derive")
    page.wait_for_selector("#content-hash")
    assert "Suspects v2" in page.text_content("h1")
    derived = version.children.get()
    fixed = np.array(derived.images.get(key="002").annotations["senior"][1])
    assert np.allclose(fixed, version.images.get(key="002").annotations["junior"][1])
