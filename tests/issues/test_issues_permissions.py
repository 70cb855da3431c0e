"""Every issue page and endpoint x every role x anonymous."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.choices import Role
from apps.accounts.services import api_token_create
from apps.issues.models import Issue

pytestmark = pytest.mark.django_db

ROLES = [None, *Role.values]  # None = anonymous
TRIAGERS = {Role.ENGINEER, Role.ADMIN}
VIEWERS = {Role.ENGINEER, Role.ADMIN, Role.RADIOLOGIST, Role.SENIOR_RADIOLOGIST, Role.API_CLIENT}


def _expected(role, allowed, ok):
    if role is None:
        return 302  # to the login page
    return ok if role in allowed else 403


# (method, url template, data, allowed roles, success status)
PAGES = [
    ("get", "/issues/", None, VIEWERS, 200),
    ("get", "/issues/{a}/", None, VIEWERS, 200),
    ("get", "/issues/new/", None, VIEWERS, 200),
    ("post", "/issues/new/", {"title": "t", "category": "data", "severity": "low"}, VIEWERS, 302),
    ("post", "/issues/{a}/comment/", {"text": "hello"}, VIEWERS, 302),
    ("post", "/issues/{a}/triage/", {"severity": "low"}, TRIAGERS, 302),
    ("post", "/issues/bulk/", {"ids": ["{a}"], "action": "severity", "value": "low"},
     TRIAGERS, 302),
    ("post", "/issues/{a}/merge/", {"target": "{b}"}, TRIAGERS, 302),
    ("post", "/issues/occurrences/{occ}/split/", {}, TRIAGERS, 302),
    ("get", "/issues/metrics/", None, TRIAGERS, 200),
    ("get", "/issues/settings/", None, {Role.ADMIN}, 200),
    ("post", "/issues/settings/", {"critical_due_minutes": 30, "high_due_minutes": 480,
     "medium_due_minutes": 4320, "low_due_minutes": 20160, "notify_window_minutes": 60},
     {Role.ADMIN}, 302),
]  # fmt: skip


@pytest.fixture
def issues(report):
    a, _ = report(title="first")
    report(title="first")
    b, _ = report(title="second")
    return {"a": a.pk, "b": b.pk, "occ": a.occurrences.first().pk}


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "url", "data", "allowed", "ok"), PAGES)
def test_page_matrix(role, method, url, data, allowed, ok, issues, client_for):
    http = client_for(role) if role else Client()
    response = getattr(http, method)(_fill(url, issues), _fill(data, issues) or {})
    assert response.status_code == _expected(role, allowed, ok), response.content[:300]
    if role is None:
        assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("role", ROLES)
def test_api_matrix(role, make_user, issues):
    http = APIClient()
    if role:
        _, key = api_token_create(user=make_user(role), name="t")
        http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    post = http.post("/api/v1/issues/", {"title": "t", "category": "data"}, format="json")
    listing = http.get("/api/v1/issues/")
    detail = http.get(f"/api/v1/issues/{issues['a']}/")
    if role is None:
        assert (post.status_code, listing.status_code, detail.status_code) == (401, 401, 401)
        return
    assert post.status_code == (201 if role in VIEWERS else 403)
    expected = 200 if role in TRIAGERS else 403
    assert (listing.status_code, detail.status_code) == (expected, expected)


def test_denied_triage_changes_nothing(issues, radiologist_client):
    radiologist_client.post(f"/issues/{issues['a']}/triage/", {"severity": "low"})
    assert Issue.objects.get(pk=issues["a"]).severity == "high"
