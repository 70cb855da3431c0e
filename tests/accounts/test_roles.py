import pytest
from django.contrib.auth.models import Group

from apps.accounts.choices import Role
from apps.accounts.roles import PERMISSIONS, ROLE_PERMISSIONS
from tests.helpers import password_login, signed_in

pytestmark = pytest.mark.django_db


def test_groups_in_database_match_role_map():
    for role, codenames in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        in_db = set(group.permissions.values_list("codename", flat=True))
        assert in_db == set(codenames), role


def test_admin_has_every_permission_and_api_client_cannot_review():
    assert ROLE_PERMISSIONS[Role.ADMIN] == set(PERMISSIONS)
    assert "review_study" not in ROLE_PERMISSIONS[Role.API_CLIENT]
    assert "view_phi" not in ROLE_PERMISSIONS[Role.ENGINEER]
    assert "manage_models" not in ROLE_PERMISSIONS[Role.ENGINEER]


@pytest.mark.parametrize(
    ("role", "perm", "expected"),
    [
        (Role.RADIOLOGIST, "review_study", True),
        (Role.RADIOLOGIST, "work_escalations", False),
        (Role.SENIOR_RADIOLOGIST, "work_escalations", True),
        (Role.ENGINEER, "view_deidentified", True),
        (Role.ENGINEER, "view_phi", False),
        (Role.API_CLIENT, "submit_study", True),
        (Role.API_CLIENT, "view_phi", False),
        (Role.ADMIN, "manage_models", True),
    ],
)
def test_user_has_perm_through_role(make_user, role, perm, expected):
    assert make_user(role).has_perm(f"accounts.{perm}") is expected


def test_role_is_highest_and_has_role(make_user):
    user = make_user(Role.RADIOLOGIST)
    user.groups.add(Group.objects.get(name=Role.SENIOR_RADIOLOGIST))
    user = type(user).objects.get(pk=user.pk)
    assert user.role == Role.SENIOR_RADIOLOGIST
    assert user.has_role(Role.RADIOLOGIST)
    assert not user.has_role(Role.ADMIN, Role.ENGINEER)


def test_no_role_and_superuser(make_user):
    assert make_user(None).role is None
    assert make_user(None, is_superuser=True).role == Role.ADMIN


def test_admin_role_opens_the_django_admin(make_user, client):
    from apps.accounts.services import user_role_set
    from tests.factories import PASSWORD

    user = make_user(None)
    assert not user.is_staff
    user_role_set(user=user, role=Role.ADMIN)
    password_login(client, user.username, PASSWORD)
    assert signed_in(client)
    assert client.get("/admin/").status_code == 200
    assert make_user(Role.ENGINEER).is_staff is False
