import pytest
from django.urls import reverse

from apps.accounts.choices import Role
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_renders_and_logs_in(client, make_user):
    user = make_user(Role.ENGINEER)
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    assert b'name="password"' in response.content
    response = client.post(
        reverse("accounts:login"), {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_bad_login_shows_error(client, make_user):
    user = make_user(Role.ENGINEER)
    response = client.post(reverse("accounts:login"), {"username": user.username, "password": "x"})
    assert response.status_code == 200
    assert b"match" in response.content
    assert b'role="alert"' in response.content


def test_logout_is_post_and_ends_session(engineer_client):
    assert engineer_client.get(reverse("home")).status_code == 200
    response = engineer_client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert engineer_client.get(reverse("home")).status_code == 302


@pytest.mark.parametrize(
    ("role", "visible", "hidden"),
    [
        (Role.ENGINEER, ["Models", "API docs"], ["Admin"]),
        (Role.ADMIN, ["Models", "Admin", "API docs"], []),
        (Role.RADIOLOGIST, ["Home"], ["Models", "Admin", "API docs"]),
        (Role.SENIOR_RADIOLOGIST, ["Home"], ["Models", "Admin"]),
    ],
)
def test_home_navigation_is_role_aware(client_for, role, visible, hidden):
    response = client_for(role).get(reverse("home"))
    assert response.status_code == 200
    labels = [item["label"] for item in response.context["nav_items"]]
    for label in visible:
        assert label in labels
    for label in hidden:
        assert label not in labels
    assert response.context["role"] == role


def test_nav_skips_url_names_that_do_not_resolve(admin_client_, monkeypatch):
    from apps.core import navigation

    items = [*navigation.NAV_ITEMS, ("Not yet built", "nowhere:index", None)]
    monkeypatch.setattr(navigation, "NAV_ITEMS", items)
    labels = [i["label"] for i in admin_client_.get(reverse("home")).context["nav_items"]]
    assert "Not yet built" not in labels
    assert "Models" in labels


def test_session_user_can_read_me_api(engineer_client):
    response = engineer_client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["role"] == "engineer"
