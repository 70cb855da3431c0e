"""Every study endpoint x every role x anonymous, and what each role may see."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.clinical.models import Study

from .conftest import PLANTED_ID, PLANTED_NAME, ROLES, cr_bytes

pytestmark = pytest.mark.django_db(transaction=True)

# role -> (POST status, list status, detail status of another client's study)
EXPECTED = {
    "api_client": (202, 200, 404),
    "radiologist": (403, 200, 200),
    "senior_radiologist": (403, 200, 200),
    "engineer": (403, 200, 200),
    "admin": (202, 200, 200),
}


@pytest.fixture
def foreign_study(api_client_b) -> Study:
    resp = api_client_b.post_dicom(cr_bytes(seed=9))
    assert resp.status_code == 202
    return Study.objects.get(public_id=resp.json()["id"])


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(role, role_user, foreign_study):
    user = role_user(role)
    http = APIClient()
    if role == "api_client":
        from apps.accounts.services import api_token_create

        _, key = api_token_create(user=user, name="t")
        http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    else:
        http.force_login(user)
    post_status, list_status, detail_status = EXPECTED[role]
    resp = http.post("/api/v1/studies/", data=cr_bytes(seed=3), content_type="application/dicom")
    assert resp.status_code == post_status, resp.content[:200]
    if post_status == 403:
        assert resp.json()["code"] == "permission_denied"
    resp = http.get("/api/v1/studies/")
    assert resp.status_code == list_status
    ids = {r["id"] for r in resp.json()["results"]}
    assert (str(foreign_study.public_id) in ids) == (detail_status == 200)
    resp = http.get(f"/api/v1/studies/{foreign_study.public_id}/")
    assert resp.status_code == detail_status


def test_anonymous_gets_401_on_every_endpoint(foreign_study):
    http = APIClient()
    for method, url in [
        ("post", "/api/v1/studies/"),
        ("get", "/api/v1/studies/"),
        ("get", f"/api/v1/studies/{foreign_study.public_id}/"),
    ]:
        resp = getattr(http, method)(url)
        assert resp.status_code == 401
        assert resp.json()["code"] == "not_authenticated"


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
