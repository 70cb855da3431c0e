"""Shadow mode of a candidate model version: start (and backfill recent studies), stop,
promote (activation, through the release gate). Audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.core.errors import Conflict
from apps.models.models import ModelVersion
from apps.models.services.registry import _require_manage, model_version_activate


def model_version_shadow_set(
    *, model_version: ModelVersion, on: bool, user: Any, backfill: int = 50, ip: str | None = None
) -> ModelVersion:
    from apps.clinical.services.audit import audit_record
    from apps.clinical.services.shadow import shadow_backfill

    _require_manage(user)
    if on and model_version.is_active:
        raise Conflict("already_active", "The active version cannot run in shadow mode.")
    with transaction.atomic():
        ModelVersion.objects.filter(pk=model_version.pk).update(in_shadow=on)
        model_version.refresh_from_db()
        audit_record(
            actor=user,
            action="model_shadow",
            target_type="model_version",
            target_id=str(model_version.pk),
            ip=ip,
            details={"on": on},
        )
    if on and backfill:
        shadow_backfill(model_version=model_version, limit=backfill)
    return model_version


def model_version_promote(
    *, model_version: ModelVersion, user: Any, ip: str | None = None
) -> ModelVersion:
    """The shadow candidate becomes the active version (release gate applies)."""
    with transaction.atomic():
        active = model_version_activate(model_version=model_version, user=user, ip=ip)
        ModelVersion.objects.filter(pk=active.pk).update(in_shadow=False)
    active.refresh_from_db()
    return active
