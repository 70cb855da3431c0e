"""PHI from the DICOM header never reaches logs or an engineer's view."""

from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from apps.clinical.models import Study
from apps.clinical.services import study_infer

from .conftest import PLANTED_ID, PLANTED_NAME, cr_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def test_planted_patient_name_never_logged_nor_shown_to_engineers(
    api_client_a, bundled_model, role_user, caplog, tmp_path
):
    caplog.set_level(logging.DEBUG)
    data = cr_bytes(
        rows=400,
        cols=320,
        spacing_mm=(0.3, 0.3),
        extra={"InstitutionName": "ST ELSEWHERE HOSPITAL", "PatientBirthDate": "19700101"},
    )
    assert PLANTED_NAME.encode() in data
    study = Study.objects.get(public_id=api_client_a.post_dicom(data).json()["id"])
    study_infer(study_id=study.pk)
    # bad inputs carrying PHI are refused without echoing it
    bad = api_client_a.post_dicom(cr_bytes(modality="MR"))
    assert PLANTED_NAME not in bad.content.decode()

    engineer = role_user("engineer")
    http = APIClient()
    http.force_login(engineer)
    views = [
        http.get("/api/v1/studies/").content,
        http.get(f"/api/v1/studies/{study.public_id}/").content,
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in [logged, *[v.decode() for v in views]]:
        for secret in ("DOE", "JANE", PLANTED_ID, "ELSEWHERE", "19700101"):
            assert secret not in text
    # the de-identified copy on disk has none of it either
    from django.core.files.storage import default_storage

    with default_storage.open(study.deid_file, "rb") as fh:
        deid = fh.read()
    for secret in (b"DOE", PLANTED_ID.encode(), b"ELSEWHERE", b"19700101"):
        assert secret not in deid
