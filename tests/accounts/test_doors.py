"""Doors (issue 8): API clients are token-only, tokens never open a page, lockouts."""

from __future__ import annotations

import secrets

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.choices import Role, SecurityEventKind
from apps.accounts.models import SecurityEvent
from apps.accounts.services import api_token_create
from tests.factories import PASSWORD
from tests.helpers import password_login, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def machine(make_user):
    """An API client an admin has (wrongly) given a password."""
    user = make_user(Role.API_CLIENT, username="pacs")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_api_client_cannot_sign_in_with_a_password(machine, path):
    client = Client()
    response = password_login(client, "pacs", PASSWORD, path=path)
    assert response.status_code == 200  # the form again, with its error
    assert not signed_in(client)
    assert client.get("/").status_code == 302


def test_an_existing_session_of_a_machine_account_is_dropped(make_user):
    user = make_user(Role.ENGINEER, username="became-machine")
    client = Client()
    client.force_login(user)
    assert client.get("/").status_code == 200
    user.groups.clear()
    from apps.accounts.services import user_role_set

    user_role_set(user=user, role=Role.API_CLIENT)
    response = client.get("/issues/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_admin_cannot_give_an_api_client_a_password(machine, admin_client_):
    url = f"/admin/accounts/user/{machine.pk}/password/"
    response = admin_client_.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/accounts/user/{machine.pk}/change/"
    new = "N3w-Secret-99x"
    response = admin_client_.post(
        url, {"password1": new, "password2": new, "usable_password": "true"}
    )
    assert response.status_code == 302
    machine.refresh_from_db()
    assert not machine.check_password("N3w-Secret-99x")


def test_saving_an_api_client_in_the_admin_removes_its_password(machine, make_user):
    root = make_user(None, username="root", is_superuser=True, is_staff=True)
    admin_client_ = Client()
    admin_client_.force_login(root)
    assert machine.has_usable_password()
    response = admin_client_.post(
        f"/admin/accounts/user/{machine.pk}/change/",
        {"username": "pacs", "groups": [g.pk for g in machine.groups.all()], "is_active": "on",
         "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
         "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00"},
    )  # fmt: skip
    assert response.status_code == 302, response.content[:500]
    machine.refresh_from_db()
    assert not machine.has_usable_password()


@pytest.fixture
def token_http(api_client_user) -> APIClient:
    _, key = api_token_create(user=api_client_user, name="t")
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return http


PAGES = ["/", "/issues/", "/issues/new/", "/api/docs/", "/clinical/queue/"]


@pytest.mark.parametrize("path", PAGES)
def test_a_token_never_opens_a_page(token_http, path):
    response = token_http.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_api_docs_open_for_a_session_with_their_script_as_a_file(engineer_client):
    page = engineer_client.get("/api/docs/")
    assert page.status_code == 200
    assert b"<script>" not in page.content  # no inline script: the CSP forbids it
    script = engineer_client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "javascript" in script["Content-Type"]


def test_token_opens_the_schema(token_http):
    response = token_http.get("/api/schema/")
    assert response.status_code == 200


# --- Lockout -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_lockout_after_the_configured_failures(make_user, settings, path):
    user = make_user(Role.ADMIN, username="target")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert password_login(client, "target", "wrong-password", path=path).status_code == 200
    locked = password_login(client, "target", "wrong-password", path=path)
    assert locked.status_code == 429
    # Now even the right password is refused, with a clear message.
    response = password_login(client, "target", PASSWORD, path=path)
    assert response.status_code == 429
    assert b"Sign-in locked" in response.content
    assert b"target" in response.content
    assert not signed_in(client)
    kinds = list(SecurityEvent.objects.values_list("kind", flat=True))
    assert kinds.count(SecurityEventKind.LOGIN_FAILED) >= settings.AXES_FAILURE_LIMIT
    assert SecurityEventKind.LOCKED_OUT in kinds
    assert user.pk  # the account itself is untouched


def test_lockout_is_per_ip_too(make_user, settings):
    make_user(Role.ENGINEER, username="a1")
    make_user(Role.ENGINEER, username="a2")
    client = Client(REMOTE_ADDR="10.9.8.7")
    for i in range(settings.AXES_FAILURE_LIMIT):
        password_login(client, f"nobody{i}", "x")
    assert password_login(client, "a1", PASSWORD).status_code == 429  # same IP: locked
    other = Client(REMOTE_ADDR="10.9.8.8")
    assert password_login(other, "a2", PASSWORD).status_code == 302  # another IP: fine


def test_admin_unlock_is_audited_and_works(make_user, settings):
    make_user(Role.RADIOLOGIST, username="locked")
    admin = make_user(Role.ADMIN, username="boss")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        password_login(client, "locked", "wrong")
    assert password_login(client, "locked", PASSWORD).status_code == 429
    call_command("account_unlock", "--username", "locked", "--ip", "127.0.0.1", "--actor", "boss")
    event = SecurityEvent.objects.get(kind=SecurityEventKind.UNLOCKED)
    assert event.actor == admin
    assert event.username == "locked"
    response = password_login(client, "locked", PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)


def test_unlock_needs_an_admin(make_user):
    from django.core.management.base import CommandError

    make_user(Role.ENGINEER, username="eng")
    with pytest.raises(CommandError, match="admin"):
        call_command("account_unlock", "--username", "x", "--actor", "eng")


# --- Token failures ----------------------------------------------------------------------


def test_failed_tokens_are_rate_limited_per_address(settings, api_client_user):
    settings.MAHTQA_TOKEN_FAILURE_LIMIT = 10
    http = APIClient(REMOTE_ADDR="10.1.1.1")
    for _ in range(10):
        http.credentials(HTTP_AUTHORIZATION=f"Token {secrets.token_urlsafe(32)}")
        response = http.get("/api/v1/studies/")
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"
    response = http.get("/api/v1/studies/")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) == settings.MAHTQA_TOKEN_FAILURE_WINDOW_S
    # A valid token from another address is unaffected.
    _, key = api_token_create(user=api_client_user, name="ok")
    good = APIClient(REMOTE_ADDR="10.1.1.2")
    good.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert good.get("/api/v1/studies/").status_code == 200
    kinds = list(SecurityEvent.objects.values_list("kind", flat=True))
    assert kinds.count(SecurityEventKind.TOKEN_FAILED) == 10
    assert kinds.count(SecurityEventKind.TOKEN_THROTTLED) == 1


def test_a_password_tried_on_a_machine_account_is_audited(machine):
    password_login(Client(), "pacs", PASSWORD)
    event = SecurityEvent.objects.get(kind=SecurityEventKind.PASSWORD_REFUSED)
    assert event.username == "pacs"


def test_tokens_work_while_the_cache_is_down(settings, api_client_user):
    """The token-failure counter fails open: intake needs neither cache nor broker."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    _, key = api_token_create(user=api_client_user, name="c")
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert http.get("/api/v1/studies/").status_code == 200
    http.credentials(HTTP_AUTHORIZATION="Token not-a-valid-token-at-all-000000000")
    response = http.get("/api/v1/studies/")
    assert response.status_code == 401
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.TOKEN_FAILED).count() == 1
