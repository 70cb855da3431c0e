import hashlib

import pytest

from apps.models.models import ModelVersion


def test_healthz_touches_no_database(client):
    # No db fixture: pytest-django would raise on any database access.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture
def active_model(tmp_path, settings, db):
    settings.MAHTQA_MODEL_DIR = tmp_path
    path = tmp_path / "w.pt"
    path.write_bytes(b"dummy weights" * 1000)
    return ModelVersion.objects.create(
        name="maht-net", version="1", weights_path="w.pt",
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(), is_active=True,
    )  # fmt: skip


@pytest.fixture
def storages_tmp(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": tmp_path / "media"}},
        "phi": {"BACKEND": "apps.core.storage.PhiStorage",
                "OPTIONS": {"location": tmp_path / "phi"}},
    }  # fmt: skip
    return tmp_path


def test_readyz_ok_with_everything_in_place(client, active_model, storages_tmp):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage", "model", "outbox"}
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert check["latency_ms"] >= 0
    assert body["checks"]["model"]["version"] == "1"
    # the storage probe cleans up after itself
    assert not any(p.is_file() for p in (storages_tmp / "media").rglob("*"))


def test_readyz_503_without_active_model(client, db, storages_tmp):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["model"] == {
        "status": "fail", "error": "no_active_model",
        "latency_ms": body["checks"]["model"]["latency_ms"],
    }  # fmt: skip
    assert body["checks"]["database"]["status"] == "ok"


def test_readyz_detects_changed_weights(client, active_model, storages_tmp, tmp_path):
    path = tmp_path / "w.pt"
    assert client.get("/readyz").status_code == 200
    path.write_bytes(b"tampered" * 10)
    body = client.get("/readyz").json()
    assert body["checks"]["model"]["error"] == "sha256_mismatch"


def test_readyz_broker_down_is_503_without_secrets(client, active_model, storages_tmp, monkeypatch):
    # Celery reads $CELERY_BROKER_URL before its configuration: this is enough.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://:s3cret@127.0.0.1:1/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["status"] == "fail"
    assert b"s3cret" not in response.content


def test_probes_are_get_only(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_readyz_reports_the_outbox_backlog_without_failing(client):
    from datetime import timedelta

    from django.utils import timezone

    from apps.outbox.models import OutboxMessage
    from tests.factories import OutboxMessageFactory

    before = client.get("/readyz")
    assert before.json()["checks"]["outbox"]["status"] == "ok"
    assert before.json()["checks"]["outbox"]["pending"] == 0
    OutboxMessageFactory()
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    after = client.get("/readyz")
    outbox = after.json()["checks"]["outbox"]
    assert outbox["status"] == "warn"
    assert outbox["pending"] == 1
    assert outbox["oldest_waiting_s"] >= 600
    assert after.status_code == before.status_code  # a backlog never takes web out
