import pytest
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db
ME = "/api/v1/me/"


def _get(header: str | None):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client.get(ME)


def test_valid_token_authenticates_and_records_use(api_token, api_client_user):
    response = _get(f"Token {api_token}")
    assert response.status_code == 200
    assert response.json()["username"] == api_client_user.username
    assert response.json()["role"] == "api_client"
    assert "submit_study" in response.json()["permissions"]
    assert ApiToken.objects.get(user=api_client_user).last_used_at is not None


def test_only_hash_is_stored(api_token):
    token = ApiToken.objects.get()
    assert api_token not in (token.key_hash, token.prefix)
    assert token.prefix == api_token[:8]
    assert len(token.key_hash) == 64


@pytest.mark.parametrize(
    "header",
    ["Token wrongwrongwrongwrong", "Token ", "Token a b", "Token short"],
    ids=["wrong", "empty", "two-parts", "short"],
)
def test_bad_tokens_are_401_json(api_token, header):
    response = _get(header)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Token"


def test_right_prefix_wrong_rest_is_401(api_token):
    response = _get(f"Token {api_token[:8]}{'x' * 35}")
    assert response.status_code == 401


def test_revoked_token_is_401(api_client_user):
    token, raw = api_token_create(user=api_client_user, name="t")
    assert _get(f"Token {raw}").status_code == 200
    api_token_revoke(token=token)
    response = _get(f"Token {raw}")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_no_credentials_is_401_not_authenticated():
    response = _get(None)
    assert response.status_code == 401
    assert response.json() == {
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
    }


def test_inactive_user_token_is_401(api_token, api_client_user):
    api_client_user.is_active = False
    api_client_user.save()
    assert _get(f"Token {api_token}").status_code == 401


def test_api_tokens_are_rate_limited(token_client, monkeypatch):
    from django.core.cache import cache

    from apps.accounts.throttling import ApiTokenRateThrottle

    cache.clear()
    monkeypatch.setitem(ApiTokenRateThrottle.THROTTLE_RATES, "api_client", "2/minute")
    assert token_client.get(ME).status_code == 200
    assert token_client.get(ME).status_code == 200
    response = token_client.get(ME)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    cache.clear()
