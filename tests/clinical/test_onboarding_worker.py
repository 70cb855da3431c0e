"""Site onboarding end to end (issue 10): a new site's cases go through a real worker to
review (every new site reviews all), radiologists work them on the review pages, an
admin calibrates and accepts on the thresholds page, and the site's next case is
routed on the site's own calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.choices import Role
from apps.clinical.models import Prediction, Site, Study
from apps.clinical.services import routing_policy_update
from mahtqa.cephalometry.isbi import load_isbi_cases
from mahtqa.cephalometry.landmarks import ABBREVIATIONS
from mahtqa.engine.data import read_gray
from mahtqa.engine.site_offset import LandmarkOffset
from mahtqa.imaging.write import write_cr
from tests.conftest import wait_until

HAMEDAN = Path(__file__).resolve().parents[3] / "shared" / "data" / "hamedan-dev"
SITE = {"InstitutionName": "Second hospital", "Manufacturer": "Planmeca",
        "ManufacturerModelName": "ProMax"}  # fmt: skip
SPACING = (0.136, 0.136)


def _post(api, case):
    pixels = read_gray(case.image_path).astype(np.uint16) * 16
    data = write_cr(pixels, spacing_mm=SPACING, spacing_attribute="ImagerPixelSpacing",
                    patient_id=f"H-{case.case_id}", extra=SITE)  # fmt: skip
    resp = api.post_dicom(data)
    assert resp.status_code == 202, resp.json()
    return Study.objects.get(public_id=resp.json()["id"])


def _settled(studies, worker):
    done = wait_until(
        lambda: (
            not Study.objects.filter(
                pk__in=[s.pk for s in studies], status__in=["queued", "processing"]
            ).exists()
        ),
        timeout=240,
    )
    assert done, worker.output()[-3000:]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_new_site_is_onboarded_from_its_reviewed_cases(
    celery_worker_process, api_client_a, bundled_model_v2, make_user, settings
):
    if not HAMEDAN.is_dir():
        pytest.skip("the second hospital's dev set is not here")
    settings.MAHTQA_SITE_MIN_REVIEWED = 5
    routing_policy_update(user=None, new_sites_review_all=True, tolerated_risk=0.1)
    cases = load_isbi_cases(HAMEDAN)[:6]
    first = [_post(api_client_a, c) for c in cases[:5]]
    _settled(first, celery_worker_process)
    assert {s.status for s in Study.objects.filter(pk__in=[s.pk for s in first])} == {"in_review"}
    site = Site.objects.get(pk=first[0].site_id)
    reasons = Prediction.objects.get(study=first[0]).routing["reasons"]
    assert "site_review_all" in [r["code"] for r in reasons]

    rad = Client()
    rad.force_login(make_user(Role.RADIOLOGIST))
    for study, case in zip(first, cases[:5], strict=True):  # the reviewers' final landmarks
        rad.post(reverse("clinical:claim", kwargs={"public_id": study.public_id}))
        final = [{"abbreviation": a, "x": float(x), "y": float(y)}
                 for a, (x, y) in zip(ABBREVIATIONS, case.mean, strict=True)]  # fmt: skip
        body = {"action": "accept", "landmarks": json.dumps(final), "confirmed": "1"}
        r = rad.post(reverse("clinical:decide", kwargs={"public_id": study.public_id}), body)
        assert r.status_code == 302
    assert Study.objects.filter(site=site, status="reviewed").count() == 5

    admin = Client()
    admin.force_login(make_user(Role.ADMIN))
    r = admin.post(reverse("clinical:site_action", kwargs={"key": site.key, "action": "calibrate"}))
    assert r.status_code == 302
    page = admin.get(reverse("clinical:thresholds")).content.decode()
    row = page.split(f'data-site="{site.key}"')[1].split("</tr>")[0]
    assert "data-proposal" in row
    assert "upper 95% bound" in row
    assert "Landmark offset from its reviewers" in row
    admin.post(reverse("clinical:site_action", kwargs={"key": site.key, "action": "accept"}))
    site.refresh_from_db()
    assert site.policy["n"] == 5
    page = admin.get(reverse("clinical:thresholds")).content.decode()
    row = page.split(f'data-site="{site.key}"')[1].split("</tr>")[0]
    assert "<td>site calibration" in row
    assert ", landmark offset</td>" in row
    assert site.policy["model_sha256"] == bundled_model_v2.sha256

    last = _post(api_client_a, cases[5])
    _settled([last], celery_worker_process)
    routing = Prediction.objects.get(study=last).routing
    assert "site_review_all" not in [r["code"] for r in routing["reasons"]]  # onboarded
    assert routing["risk"]["source"] == site.key  # its own calibration gated the case
    assert routing["risk"]["n_calibration"] == 5
    # the site's landmark offset moved the engine's points; the engine's own are kept
    pred = Prediction.objects.get(study=last)
    record = pred.risk_details["site_offset"]
    assert (record["site"], record["n"]) == (site.key, 5)
    assert pred.routing["site_offset"] == {"site": site.key, "n": 5}  # what API clients see
    offset = LandmarkOffset.from_dict(site.policy["landmark_offset"])
    expected = offset.apply(np.array(record["engine_points"]))
    stored = np.array([[lm["x"], lm["y"]] for lm in pred.landmarks])
    assert stored == pytest.approx(expected, abs=0.006)  # stored to 0.01 px
    assert not np.allclose(stored, record["engine_points"], atol=0.5)
