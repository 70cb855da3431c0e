import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.models.models import ModelVersion
from apps.models.selectors import model_version_active
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


# Who may open what (every role, anonymous, tokens): tests/test_permissions.py.


def test_list_shows_the_versions(engineer_client):
    ModelVersionFactory(name="maht-net", version="9.9")
    response = engineer_client.get(reverse("models:list"))
    assert response.status_code == 200
    assert b"9.9" in response.content


def test_list_needs_a_role(client_for):
    assert client_for(None).get(reverse("models:list")).status_code == 403


def test_engineer_sees_no_activate_buttons(engineer_client):
    ModelVersionFactory()
    response = engineer_client.get(reverse("models:list"))
    assert b"Activate</button>" not in response.content
    assert b"Roll back" not in response.content


def test_refused_activation_and_rollback_change_nothing(
    client, token_client, engineer_client, radiologist_client
):
    mv = ModelVersionFactory()
    for c in (client, token_client, engineer_client, radiologist_client):
        c.post(reverse("models:activate", args=[mv.pk]))
        c.post(reverse("models:rollback"))
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


def test_rollback_asks_first_and_says_what_changes(admin_client_):
    """Issue 11: rollback had no confirmation."""
    a, b = ModelVersionFactory(version="1.0"), ModelVersionFactory(version="2.0")
    admin_client_.post(reverse("models:activate", args=[a.pk]))
    admin_client_.post(reverse("models:activate", args=[b.pk]))
    page = admin_client_.get(reverse("models:rollback"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "data-current>" in text
    assert f"{b}" in text
    assert f"Roll back to {a}" in text
    assert model_version_active() == b  # opening the page changes nothing
    list_page = admin_client_.get(reverse("models:list")).content.decode()
    assert f'href="{reverse("models:rollback")}"' in list_page  # a link, not a one-click POST


def test_a_refused_rollback_shows_its_error_on_the_same_page(admin_client_):
    """Issue 11: the error appeared later, on an unrelated page, in the success colour."""
    ModelVersionFactory()
    response = admin_client_.post(reverse("models:rollback"))
    assert response.status_code == 409
    text = response.content.decode()
    assert 'class="error-summary" role="alert" data-code="no_previous_model"' in text
    assert "There is no previously active model." in text
    later = admin_client_.get(reverse("models:list")).content.decode()
    assert "previously active" not in later  # no stray flash message later
