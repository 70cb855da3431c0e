"""End to end through a real Celery worker process on Redis (not eager)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from apps.clinical.models import Study
from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, load_isbi_cases
from mahtqa.cephalometry.metrics import radial_errors_mm
from mahtqa.imaging.write import write_cr
from tests.conftest import wait_until

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "isbi2015-subset"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_submitted_radiograph_comes_back_with_landmarks(
    celery_worker_process, api_client_a, bundled_model
):
    if not DATA.is_dir():
        pytest.skip("ISBI subset not present")
    case = load_isbi_cases(DATA, [bundled_model.manifest["split"]["test"][0]])[0]
    pixels = cv2.imread(str(case.image_path), cv2.IMREAD_GRAYSCALE).astype(np.uint16) * 16
    resp = api_client_a.post_dicom(write_cr(pixels, spacing_mm=ISBI_SPACING_MM))
    assert resp.status_code == 202
    url = resp.json()["url"]
    done = wait_until(
        lambda: (
            Study.objects.filter(public_id=resp.json()["id"])
            .exclude(status__in=["queued", "processing"])
            .exists()
        ),
        timeout=180,
    )
    assert done, celery_worker_process.output()[-3000:]
    body = api_client_a.get(url).json()
    assert body["status"] in ("released", "in_review"), body
    assert body["model_version"]["version"] == bundled_model.version
    assert body["pixel_spacing_mm"] == pytest.approx(list(ISBI_SPACING_MM))
    assert body["pixel_spacing_source"] == "PixelSpacing"
    points = np.array([[lm["x"], lm["y"]] for lm in body["landmarks"]])
    errors = radial_errors_mm(points, case.mean, ISBI_SPACING_MM)
    assert errors.mean() < 2.5, errors
    assert {m for m in body["measurements"]} == {"SNA", "SNB", "ANB", "S-N", "N-Me", "Y-axis"}
    assert body["routing"]["reasons"]
