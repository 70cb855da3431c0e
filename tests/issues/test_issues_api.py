"""POST /api/v1/issues/: token auth, idempotent by fingerprint, every error a 4xx JSON."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from apps.issues.models import Issue
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/issues/"
GOOD = {"title": "CUDA error: device-side assert", "category": "training", "severity": "high"}


def test_new_report_is_201_and_repeat_is_200_same_issue(token_client):
    first = token_client.post(URL, GOOD, format="json")
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["created"] is True
    assert body["occurrence_count"] == 1
    assert body["url"] == f"/issues/{body['id']}/"
    second = token_client.post(URL, GOOD, format="json")
    assert second.status_code == 200
    assert second.json()["id"] == body["id"]
    assert second.json()["occurrence_count"] == 2
    assert second.json()["created"] is False


def test_full_report_stores_context_steps_and_links(token_client):
    mv = ModelVersionFactory()
    payload = {
        **GOOD,
        "description": "Fails at step 1200",
        "reproduction_steps": ["python train.py", "wait for epoch 3"],
        "environment": {"python": "3.11.9", "torch": {"cuda_available": True}},
        "system_metrics": {"memory_percent": 97.5},
        "data_state": {"dataset": "isbi-subset", "batch": 8},
        "traces": [{"type": "RuntimeError", "message": "CUDA error",
                    "frames": [{"filename": "/w/engine/train.py", "lineno": 10,
                                "function": "step"}]}],
        "dataset_name": "isbi2015-subset",
        "model_version": f"{mv.name}@{mv.version}",
        "fingerprint": "cuda-assert",
    }  # fmt: skip
    response = token_client.post(URL, payload, format="json")
    assert response.status_code == 201, response.json()
    issue = Issue.objects.get(pk=response.json()["id"])
    assert [s.text for s in issue.steps.all()] == payload["reproduction_steps"]
    assert issue.model_version == mv
    assert issue.dataset_name == "isbi2015-subset"
    assert issue.context["environment"]["python"] == "3.11.9"
    assert issue.context["system_metrics"] == {"memory_percent": 97.5}
    assert issue.context["data_state"] == {"dataset": "isbi-subset", "batch": 8}
    assert issue.context["error_traces"][0]["frames"][0]["function"] == "step"
    assert "routing_policy" in issue.context["configuration"]
    assert issue.context["configuration"]["routing_policy"]["version"] >= 1
    assert issue.exception_type == "RuntimeError"


def test_engineer_session_may_report(engineer_client):
    response = engineer_client.post(URL, GOOD, content_type="application/json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "parse_error"),
        ("[1, 2]", "application/json", 400, "invalid_body"),
        ({"category": "training"}, None, 400, "invalid"),  # no title
        ({**GOOD, "title": ""}, None, 400, "invalid"),
        ({**GOOD, "title": "x" * 201}, None, 400, "invalid"),
        ({**GOOD, "category": "weather"}, None, 400, "invalid"),
        ({**GOOD, "severity": "urgent"}, None, 400, "invalid"),
        ({**GOOD, "reproduction_steps": "do it"}, None, 400, "invalid"),
        ({**GOOD, "reproduction_steps": ["s"] * 51}, None, 400, "invalid"),
        ({**GOOD, "traces": [{"message": "no type"}]}, None, 400, "invalid"),
        ({**GOOD, "traces": "boom"}, None, 400, "invalid"),
        ({**GOOD, "environment": "linux"}, None, 400, "invalid"),
        ({**GOOD, "data_state": [1]}, None, 400, "invalid"),
        ({**GOOD, "study": "not-a-uuid"}, None, 400, "invalid"),
        ({**GOOD, "study": "3f2a1c9e-1b2c-4d5e-8f90-1234567890ab"}, None, 404, "not_found"),
        ({**GOOD, "model_version": "latest"}, None, 400, "invalid_model_version"),
        ({**GOOD, "model_version": "999999"}, None, 400, "unknown_model_version"),
        ({**GOOD, "model_version": "nope@1"}, None, 400, "unknown_model_version"),
        ({**GOOD, "fingerprint": "has spaces and ;"}, None, 400, "invalid"),
        ({**GOOD, "phi_values": "DOE"}, None, 400, "invalid"),
        ("title=x", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_bad_input_is_a_4xx_json_error(token_client, body, content_type, status, code):
    if content_type is None:
        response = token_client.post(URL, body, format="json")
    else:
        response = token_client.generic("POST", URL, body, content_type=content_type)
    assert response.status_code == status, response.content
    data = response.json()
    assert data["code"] == code
    assert data["message"]
    assert Issue.objects.count() == 0


def test_too_large_body_is_413(token_client):
    body = {**GOOD, "description": "x" * (1024 * 1024 + 10)}
    response = token_client.post(URL, body, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_no_token_is_401(client):
    response = APIClient().post(URL, GOOD, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_bad_token_is_401():
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION="Token nope")
    response = c.post(URL, GOOD, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_token_without_report_permission_is_403(make_user):
    user = make_user(None)
    _, key = api_token_create(user=user, name="t")
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = c.post(URL, GOOD, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_list_and_detail_need_triage_permission(token_client, engineer_client):
    created = token_client.post(URL, GOOD, format="json").json()
    assert token_client.get(URL).status_code == 403
    listed = engineer_client.get(URL)
    assert listed.status_code == 200
    assert [i["id"] for i in listed.json()] == [created["id"]]
    detail = engineer_client.get(f"{URL}{created['id']}/")
    assert detail.status_code == 200
    assert detail.json()["title"] == GOOD["title"]
    missing = engineer_client.get(f"{URL}999999/")
    assert missing.status_code == 404
    assert missing.json()["code"] == "issue_not_found"
