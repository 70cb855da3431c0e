"""Clinical fixtures: API clients with tokens, users per role, the bundled model, DICOM files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rest_framework.test import APIClient

from apps.accounts.choices import Role
from apps.accounts.models import User
from apps.accounts.services import api_client_create, user_role_set
from mahtqa.engine.phantoms import phantom_dicom
from mahtqa.imaging.write import write_cr

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "mahtqa" / "engine" / "bundled" / "mahtnet-v1.pt"
PLANTED_NAME = "DOE^JANE^MARIE"
PLANTED_ID = "PATIENT-4711"


@pytest.fixture(autouse=True)
def _isolated_storage(request, settings, tmp_path):
    if request.node.get_closest_marker("worker"):
        yield  # a real worker process shares the test settings' storage
        return
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PHI_ROOT = tmp_path / "phi"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
        "phi": {
            "BACKEND": "apps.core.storage.PhiStorage",
            "OPTIONS": {"location": tmp_path / "phi"},
        },
    }
    from django.core.files.storage import storages

    storages._storages = {}
    yield
    storages._storages = {}


def stored_files(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("*.dcm")]


class Client:
    def __init__(self, user: User, key: str):
        self.user = user
        self.key = key
        self.http = APIClient()
        self.http.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    def post_dicom(self, data: bytes, **extra):
        return self.http.post(
            "/api/v1/studies/", data=data, content_type="application/dicom", **extra
        )

    def get(self, url: str):
        return self.http.get(url)


@pytest.fixture
def api_client_a(db) -> Client:
    user, _, key = api_client_create(name="pacs-bridge-a")
    return Client(user, key)


@pytest.fixture
def api_client_b(db) -> Client:
    user, _, key = api_client_create(name="pacs-bridge-b")
    return Client(user, key)


@pytest.fixture
def role_user(db):
    def make(role: str) -> User:
        user = User.objects.create_user(username=f"u-{role}", password="pw-123456789")
        user_role_set(user=user, role=role)
        return user

    return make


ROLES = [r.value for r in Role]


@pytest.fixture
def phantom_bytes() -> bytes:
    data, _ = phantom_dicom(seed=7)
    return data


def cr_bytes(*, seed: int = 0, rows: int = 256, cols: int = 200, **kwargs) -> bytes:
    pixels = (np.random.default_rng(seed).random((rows, cols)) * 4000).astype(np.uint16)
    kwargs.setdefault("patient_name", PLANTED_NAME)
    kwargs.setdefault("patient_id", PLANTED_ID)
    return write_cr(pixels, **kwargs)


@pytest.fixture
def bundled_model(db):
    from apps.models.services import model_version_bundled_register

    mv, _, _ = model_version_bundled_register(weights_file=BUNDLED)
    return mv


BUNDLED_V2 = REPO / "mahtqa" / "engine" / "bundled" / "mahtnet-v2.pt"


@pytest.fixture
def bundled_model_v2(db):
    """The v2 bundle registered and active (v1 registered beside it for rollback)."""
    from apps.models.services import model_version_activate, model_version_bundled_register
    from tests.factories import UserFactory

    model_version_bundled_register(weights_file=BUNDLED)
    mv, _, _ = model_version_bundled_register(weights_file=BUNDLED_V2)
    model_version_activate(model_version=mv, user=UserFactory(role=Role.ADMIN))
    return mv
