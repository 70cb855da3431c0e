import hashlib

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from apps.accounts.choices import Role
from apps.core.errors import Conflict, InvalidInput
from apps.core.exceptions import domain_status
from apps.models.models import ModelVersion
from apps.models.selectors import model_version_active, model_version_list
from apps.models.services import (
    model_version_activate,
    model_version_register,
    model_version_rollback,
)
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def test_register_hashes_file_and_reads_manifest(weights_file, make_user):
    engineer = make_user(Role.ENGINEER)
    mv = model_version_register(
        name="maht-net", version="1", weights_path="maht-net-v1.pt", registered_by=engineer
    )
    assert mv.sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert mv.manifest == {"name": "maht-net", "version": "1"}
    assert mv.weights_path == "maht-net-v1.pt"
    assert not mv.is_active
    assert list(model_version_list()) == [mv]


def test_register_absolute_path_without_manifest(tmp_path):
    path = tmp_path / "other.pt"
    path.write_bytes(b"x")
    mv = model_version_register(name="m", version="2", weights_path=str(path))
    assert mv.manifest == {}


def test_register_missing_file_and_duplicate(weights_file):
    with pytest.raises(InvalidInput) as exc:
        model_version_register(name="m", version="1", weights_path="missing.pt")
    assert exc.value.code == "weights_not_found"
    model_version_register(name="m", version="1", weights_path=str(weights_file))
    with pytest.raises(Conflict) as exc:
        model_version_register(name="m", version="1", weights_path=str(weights_file))
    assert exc.value.code == "model_version_exists"


def test_register_needs_permission(weights_file, make_user):
    with pytest.raises(PermissionDenied):
        model_version_register(
            name="m", version="1", weights_path=str(weights_file),
            registered_by=make_user(Role.RADIOLOGIST),
        )  # fmt: skip


def test_database_allows_only_one_active():
    ModelVersionFactory(is_active=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersionFactory(is_active=True)
    ModelVersionFactory(is_active=False)
    ModelVersionFactory(is_active=False)
    assert ModelVersion.objects.count() == 3


@pytest.mark.parametrize(
    "role", [Role.ENGINEER, Role.RADIOLOGIST, Role.SENIOR_RADIOLOGIST, Role.API_CLIENT]
)
def test_activate_and_rollback_are_admin_only(make_user, role):
    mv = ModelVersionFactory()
    user = make_user(role)
    with pytest.raises(PermissionDenied):
        model_version_activate(model_version=mv, user=user)
    with pytest.raises(PermissionDenied):
        model_version_rollback(user=user)
    assert model_version_active() is None


def test_activate_switches_and_rollback_returns(make_user):
    admin = make_user(Role.ADMIN)
    a, b = ModelVersionFactory(), ModelVersionFactory()
    model_version_activate(model_version=a, user=admin)
    assert model_version_active() == a
    model_version_activate(model_version=b, user=admin)
    a.refresh_from_db()
    assert model_version_active() == b
    assert not a.is_active
    assert model_version_rollback(user=admin) == a
    assert model_version_active() == a
    assert model_version_active().activated_by == admin


def test_rollback_without_history_is_conflict(make_user):
    with pytest.raises(Conflict) as exc:
        model_version_rollback(user=make_user(Role.ADMIN))
    assert exc.value.code == "no_previous_model"
    assert domain_status(exc.value) == 409
