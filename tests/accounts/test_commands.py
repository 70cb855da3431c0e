import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, User
from tests.helpers import password_login, signed_in

pytestmark = pytest.mark.django_db


def _run(*args, env=None) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_api_client_last_line_is_a_working_key():
    output = _run("create_api_client", "pacs-1")
    key = output.strip().splitlines()[-1]
    assert " " not in key
    assert len(key) >= 40
    user = User.objects.get(username="pacs-1")
    assert user.role == "api_client"
    assert not user.has_usable_password()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me/").json()["username"] == "pacs-1"


def test_revoke_api_token_by_prefix():
    key = _run("create_api_client", "pacs-2").strip().splitlines()[-1]
    output = _run("revoke_api_token", key[:8])
    assert "Revoked" in output
    assert ApiToken.objects.get(prefix=key[:8]).revoked_at is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me/").status_code == 401


def test_revoke_unknown_prefix_fails():
    with pytest.raises(CommandError):
        _run("revoke_api_token", "nope1234")


def test_seed_demo_users_is_idempotent_and_honours_demo_password(monkeypatch, client):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-pass-123")
    first = _run("seed_demo_users")
    second = _run("seed_demo_users")
    assert "token already issued" in second
    assert (
        User.objects.filter(username__in=["radiologist", "senior", "engineer", "admin"]).count()
        == 4
    )
    assert User.objects.get(username="senior").role == "senior_radiologist"
    assert User.objects.get(username="admin").role == "admin"
    assert "demo-pass-123" in first
    assert ApiToken.objects.filter(user__username="demo-pacs").count() == 1
    password_login(client, "engineer", "demo-pass-123")
    assert signed_in(client)


def test_seed_demo_users_random_passwords(monkeypatch, client):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    output = _run("seed_demo_users")
    line = next(ln for ln in output.splitlines() if "login radiologist" in ln)
    password = line.split("password", 1)[1].strip()
    password_login(client, "radiologist", password)
    assert signed_in(client)


def test_seed_demo_users_reset_gives_working_logins_and_new_token(monkeypatch, client):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    _run("seed_demo_users")
    output = _run("seed_demo_users", "--reset")
    line = next(ln for ln in output.splitlines() if "login senior" in ln)
    password_login(client, "senior", line.split("password", 1)[1].strip())
    assert signed_in(client)
    key = next(ln for ln in output.splitlines() if "token" in ln).split("token", 1)[1].strip()
    assert ApiToken.objects.filter(user__username="demo-pacs", revoked_at=None).count() == 1
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/me/").status_code == 200


def test_token_prefixes_never_start_with_a_dash(api_client_user):
    """A prefix starting with "-" reads as an option on the command line
    (`revoke_api_token -x1234567`): keys are drawn again until they don't."""
    from apps.accounts.services import api_token_create

    prefixes = [api_token_create(user=api_client_user, name=f"t{i}")[0].prefix for i in range(300)]
    assert not [p for p in prefixes if p.startswith("-")]
