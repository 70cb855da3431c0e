"""Small bugs from issue 11, fixed along the way: filter codes, issue prefill, bulk GET,
favicon. (The rest of issue 11, the review workstation, is still open.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.clinical.views.queues import FINDING_CODES
from mahtqa.cephalometry.plausibility import ORDER_CODES, RANGE_CODES, SHAPE_CODE

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).resolve().parents[2] / "static"


def test_the_finding_filter_offers_the_codes_cases_carry():
    assert "range_S-N" in FINDING_CODES
    assert "order_a_b" in FINDING_CODES
    assert SHAPE_CODE == "shape_outlier"
    assert SHAPE_CODE in FINDING_CODES
    assert set(ORDER_CODES) | set(RANGE_CODES) <= set(FINDING_CODES)
    for stale in ("sn_range", "sna_range", "a_above_b", "shape"):
        assert stale not in FINDING_CODES


def test_the_queue_filter_finds_a_case_by_its_range_code(radiologist_client):
    from tests.clinical.review_factories import make_case

    task = make_case()
    task.reasons = [{"code": "range_S-N", "message": "S-N out of range", "severity": "high"}]
    task.save(update_fields=["reasons"])
    other = make_case()  # another case without it
    page = radiologist_client.get("/clinical/queue/?finding=range_S-N")
    assert page.status_code == 200
    assert str(task.study.public_id) in page.content.decode()
    assert str(other.study.public_id) not in page.content.decode()
    assert "<option selected>range_S-N</option>" in page.content.decode()


def test_start_an_issue_prefills_the_study(radiologist_client):
    page = radiologist_client.get("/issues/new/?study=3f2a1c9e-1b2c-4d5e-8f90-1234567890ab")
    assert page.status_code == 200
    assert 'value="3f2a1c9e-1b2c-4d5e-8f90-1234567890ab"' in page.content.decode()


def test_bulk_url_opened_in_a_browser_goes_to_the_board(engineer_client):
    response = engineer_client.get("/issues/bulk/")
    assert response.status_code == 302
    assert response["Location"] == "/issues/"


def test_every_page_has_a_favicon(engineer_client):
    page = engineer_client.get("/issues/")
    assert 'rel="icon"' in page.content.decode()
    assert (STATIC / "favicon.svg").is_file()
    assert engineer_client.get("/static/favicon.svg").status_code == 200
