"""The response plan's settings (admins): automatic review-all on a safety alert, the
acknowledgement timeout and the on-call order."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction

from apps.clinical.choices import AuditAction
from apps.clinical.services.audit import audit_record
from apps.core.errors import InvalidInput
from apps.monitoring.models import MonitorSettings
from apps.monitoring.services.incidents import monitor_settings_get


def monitor_response_update(
    *, user, auto_review_all_on_safety: bool, ack_timeout_minutes: float,
    oncall_levels: list[str], ip: str | None = None,
) -> MonitorSettings:  # fmt: skip
    """The response plan's settings (admins): automatic review-all on a safety alert, the
    acknowledgement timeout and the on-call order (role names). Audited."""
    errors = {}
    if not 0.5 <= ack_timeout_minutes <= 24 * 60:
        errors["ack_timeout_minutes"] = "between 0.5 and 1440 minutes"
    known = set(Group.objects.values_list("name", flat=True))
    unknown = [level for level in oncall_levels if level not in known]
    if unknown:
        errors["oncall_levels"] = f"unknown role(s): {', '.join(unknown)}"
    if len(set(oncall_levels)) != len(oncall_levels):
        errors["oncall_levels"] = "a role appears twice"
    if errors:
        raise InvalidInput("invalid_settings", "Some settings are not valid.", details=errors)
    with transaction.atomic():
        config = MonitorSettings.objects.select_for_update().get(pk=monitor_settings_get().pk)
        before = {"auto_review_all_on_safety": config.auto_review_all_on_safety,
                  "ack_timeout_minutes": config.ack_timeout_minutes,
                  "oncall_levels": list(config.oncall_levels)}  # fmt: skip
        config.auto_review_all_on_safety = auto_review_all_on_safety
        config.ack_timeout_minutes = ack_timeout_minutes
        config.oncall_levels = list(oncall_levels)
        config.save()
        audit_record(
            actor=user, action=AuditAction.THRESHOLDS_CHANGE, target_type="monitor_response",
            target_id="1", ip=ip, details={"before": before, "after": {
                "auto_review_all_on_safety": auto_review_all_on_safety,
                "ack_timeout_minutes": ack_timeout_minutes, "oncall_levels": oncall_levels}},
        )  # fmt: skip
    return config
