"""The pipeline on the v2 engine: case risk stored, risk-controlled routing in force."""

from __future__ import annotations

import pytest

from apps.clinical.choices import StudyStatus
from apps.clinical.models import Prediction, Study
from apps.clinical.services import routing_policy_update, study_infer
from mahtqa.engine.data import read_gray
from mahtqa.imaging.write import write_cr

from .conftest import REPO

pytestmark = pytest.mark.django_db(transaction=True)
ISBI = REPO.parent / "shared" / "data" / "isbi2015-subset" / "images"


def _isbi_study(client, case_id: str) -> Study:
    pixels = read_gray(ISBI / f"{case_id}.png").astype("uint16") * 16
    data = write_cr(pixels, spacing_mm=(0.3, 0.3023), patient_id=f"ISBI-{case_id}")
    resp = client.post_dicom(data)
    assert resp.status_code == 202, resp.json()
    return Study.objects.get(public_id=resp.json()["id"])


def test_a_v2_prediction_is_routed_on_its_certified_case_risk(api_client_a, bundled_model_v2):
    study = _isbi_study(api_client_a, "020")
    study_infer(study_id=study.pk)
    pred = Prediction.objects.get(study=study)
    assert pred.model_version == bundled_model_v2
    assert 0.0 <= pred.case_risk <= 1.0
    assert len(pred.risk_details["p_over_4mm"]) == 7
    threshold = bundled_model_v2.manifest["risk_control"]["by_alpha"]["0.05"]["threshold"]
    codes = [r["code"] for r in pred.routing["reasons"]]
    assert "low_confidence" not in codes  # the raw limits are not used in this mode
    assert pred.routing["risk"]["source"] == "global"
    if threshold is None:  # 100 calibration cases could not certify 5 %: all reviewed
        assert "risk_not_certified" in codes
    elif pred.case_risk > threshold:
        assert "predicted_gross_error" in codes
    else:
        assert "predicted_gross_error" not in codes


def test_raw_mode_uses_the_per_landmark_limits_again(api_client_a, bundled_model_v2):
    routing_policy_update(user=None, routing_mode="raw_thresholds", min_confidence=0.9999)
    study = _isbi_study(api_client_a, "021")
    study_infer(study_id=study.pk)
    study.refresh_from_db()
    pred = Prediction.objects.get(study=study)
    assert study.status == StudyStatus.IN_REVIEW
    assert "low_confidence" in [r["code"] for r in pred.routing["reasons"]]
    assert "predicted_gross_error" not in [r["code"] for r in pred.routing["reasons"]]
