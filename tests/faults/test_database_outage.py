"""The database refused: every answer is a 503 with Retry-After, nothing is half-stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.services import api_client_create
from apps.clinical.models import Study
from tests.clinical.conftest import cr_bytes
from tests.faults.conftest import database_refused

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.faults]


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture
def pacs():
    _, _, key = api_client_create(name="pacs-outage")
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return http


def test_intake_during_a_database_outage_is_503_and_stores_nothing(pacs):
    data = cr_bytes(seed=11)
    before = _files(Path(settings.MEDIA_ROOT)) | _files(Path(settings.PHI_ROOT))
    with database_refused():
        responses = [
            pacs.post("/api/v1/studies/", data=data, content_type="application/dicom")
            for _ in range(3)
        ]
    for response in responses:
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        body = response.json()
        assert body["code"] == "service_unavailable"
        assert body["details"]["dependency"] == "database"
    assert Study.objects.count() == 0
    after = _files(Path(settings.MEDIA_ROOT)) | _files(Path(settings.PHI_ROOT))
    assert after == before  # no orphan original or de-identified file
    # Back up: the same file is accepted.
    response = pacs.post("/api/v1/studies/", data=data, content_type="application/dicom")
    assert response.status_code == 202
    assert Study.objects.count() == 1


@pytest.mark.parametrize("path", ["/api/v1/studies/", "/api/v1/issues/"])
def test_every_api_read_is_503_during_the_outage(pacs, path):
    with database_refused():
        response = pacs.get(path)
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"


def test_pages_get_a_friendly_503(engineer):
    client = Client(raise_request_exception=False)
    client.force_login(engineer)
    with database_refused():
        response = client.get("/issues/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"Temporarily unavailable" in response.content
    assert b"database" in response.content


def test_readyz_names_the_database(client):
    with database_refused():
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "fail"
