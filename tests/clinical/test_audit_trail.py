"""The audit trail is append-only (ORM and database) and admins can read it."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from apps.clinical.choices import AuditAction
from apps.clinical.models import AuditEvent
from apps.clinical.services.audit import audit_record

pytestmark = pytest.mark.django_db


def _entry(user) -> AuditEvent:
    return audit_record(
        actor=user, action=AuditAction.CASE_OPEN_PHI, target_type="study", target_id="abc",
        ip="203.0.113.9", details={"read_only": True},
    )  # fmt: skip


def test_entries_cannot_be_changed_or_deleted_through_the_orm(admin_user):
    entry = _entry(admin_user)
    entry.target_id = "other"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=entry.pk).update(target_id="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=entry.pk).target_id == "abc"


def test_the_database_refuses_update_and_delete(admin_user):
    entry = _entry(admin_user)
    table = AuditEvent._meta.db_table
    for sql in (f"UPDATE {table} SET target_id = 'x' WHERE id = %s",  # noqa: S608
                f"DELETE FROM {table} WHERE id = %s"):  # noqa: S608  # fmt: skip
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [entry.pk])
    assert AuditEvent.objects.filter(pk=entry.pk, target_id="abc").exists()


def test_admins_read_the_trail_with_who_what_when_where(admin_client_, radiologist):
    _entry(radiologist)
    html = admin_client_.get(reverse("clinical:audit")).content.decode()
    assert radiologist.username in html
    assert "Opened a case with PHI" in html
    assert "203.0.113.9" in html
    filtered = admin_client_.get(
        reverse("clinical:audit"), {"action": "thresholds_change"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "203.0.113.9" not in filtered
    assert "<html" not in filtered


# API clients never get a session (tests/accounts/test_doors.py, tests/test_permissions.py)
@pytest.mark.parametrize("role", ["radiologist", "senior_radiologist", "engineer"])
def test_only_admins_read_the_trail(client_for, role):
    assert client_for(role).get(reverse("clinical:audit")).status_code == 403
