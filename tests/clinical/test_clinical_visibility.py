"""What each role sees of a study through the API (statuses: tests/test_permissions.py)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.clinical.models import Study

from .conftest import PLANTED_ID, PLANTED_NAME, ROLES, cr_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_study(api_client_b) -> Study:
    resp = api_client_b.post_dicom(cr_bytes(seed=9))
    assert resp.status_code == 202
    return Study.objects.get(public_id=resp.json()["id"])


def _http(role: str, user) -> APIClient:
    http = APIClient()
    if role == "api_client":
        from apps.accounts.services import api_token_create

        _, key = api_token_create(user=user, name="t")
        http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    else:
        http.force_login(user)
    return http


@pytest.mark.parametrize("role", ROLES)
def test_the_list_shows_another_clients_study_to_every_role_but_api_clients(
    role, role_user, foreign_study
):
    resp = _http(role, role_user(role)).get("/api/v1/studies/")
    assert resp.status_code == 200
    ids = {r["id"] for r in resp.json()["results"]}
    assert (str(foreign_study.public_id) in ids) is (role != "api_client")


def test_revoked_or_wrong_token_is_refused(api_client_a):
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    resp = http.get("/api/v1/studies/")
    assert resp.status_code == 401
    assert resp.json()["code"] == "authentication_failed"


def test_engineers_see_only_deidentified_identifiers(role_user, foreign_study):
    engineer = role_user("engineer")
    http = APIClient()
    http.force_login(engineer)
    body = http.get(f"/api/v1/studies/{foreign_study.public_id}/").content.decode()
    assert foreign_study.sop_instance_uid not in body
    assert foreign_study.study_instance_uid not in body
    assert foreign_study.deid_sop_instance_uid in body
    assert PLANTED_NAME.split("^")[0] not in body
    assert PLANTED_ID not in body
    radiologist = role_user("radiologist")
    http.force_login(radiologist)
    body = http.get(f"/api/v1/studies/{foreign_study.public_id}/").content.decode()
    assert foreign_study.sop_instance_uid in body
