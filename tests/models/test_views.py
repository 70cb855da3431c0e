import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.accounts.choices import Role
from apps.models.models import ModelVersion
from apps.models.selectors import model_version_active
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def test_list_anonymous_redirects_to_login(client):
    response = client.get(reverse("models:list"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.ENGINEER, 200),
        (Role.ADMIN, 200),
        (Role.RADIOLOGIST, 403),
        (Role.SENIOR_RADIOLOGIST, 403),
        (Role.API_CLIENT, 403),
        (None, 403),
    ],
)
def test_list_per_role(client_for, role, status):
    ModelVersionFactory(name="maht-net", version="9.9")
    response = client_for(role).get(reverse("models:list"))
    assert response.status_code == status
    if status == 200:
        assert b"9.9" in response.content


def test_engineer_sees_no_activate_buttons(engineer_client):
    ModelVersionFactory()
    response = engineer_client.get(reverse("models:list"))
    assert b"Activate</button>" not in response.content
    assert b"Roll back" not in response.content


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.RADIOLOGIST, Role.API_CLIENT])
def test_activate_and_rollback_forbidden_for_non_admins(client_for, role):
    mv = ModelVersionFactory()
    c = client_for(role)
    assert c.post(reverse("models:activate", args=[mv.pk])).status_code == 403
    assert c.post(reverse("models:rollback")).status_code == 403
    assert model_version_active() is None


def test_activate_anonymous_and_token_redirect(client, token_client):
    mv = ModelVersionFactory()
    for c in (client, token_client):
        response = c.post(reverse("models:activate", args=[mv.pk]))
        assert response.status_code == 302
    assert model_version_active() is None


def test_admin_activates_and_rolls_back(admin_client_):
    a, b = ModelVersionFactory(), ModelVersionFactory()
    response = admin_client_.post(reverse("models:activate", args=[a.pk]))
    assert response.status_code == 302
    assert admin_client_.get(reverse("models:activate", args=[b.pk])).status_code == 405
    admin_client_.post(reverse("models:activate", args=[b.pk]))
    assert model_version_active() == b
    admin_client_.post(reverse("models:rollback"))
    assert model_version_active() == a


def test_htmx_activate_returns_the_table_fragment(admin_client_):
    mv = ModelVersionFactory(version="7.7")
    response = admin_client_.post(reverse("models:activate", args=[mv.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<div id="model-table">')
    assert b"<html" not in response.content
    assert b"active" in response.content


def test_rollback_without_history_shows_message(admin_client_):
    response = admin_client_.post(reverse("models:rollback"), follow=True)
    assert b"no previously active model" in response.content


def test_model_register_bundled(tmp_path):
    out = io.StringIO()
    call_command("model_register_bundled", "--dir", str(tmp_path), stdout=out)
    assert "No bundled weights" in out.getvalue()
    (tmp_path / "maht-net-small.pt").write_bytes(b"weights")
    (tmp_path / "maht-net-small.json").write_text('{"name": "maht-net-small", "version": "0.1"}')
    out = io.StringIO()
    call_command("model_register_bundled", "--dir", str(tmp_path), stdout=out)
    assert "Activated" in out.getvalue()
    out = io.StringIO()
    call_command("model_register_bundled", "--dir", str(tmp_path), stdout=out)
    assert "Already registered" in out.getvalue()
    assert "Activated" not in out.getvalue()
    mv = ModelVersion.objects.get()
    assert (mv.name, mv.version, mv.is_active) == ("maht-net-small", "0.1", True)
