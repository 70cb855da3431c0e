"""The clinical performance monitor: its report, its beat run, and its thresholds.

``clinical_monitor_run`` (beat, every MAHTQA_CLINICAL_MONITOR_SECONDS) evaluates the
admin's thresholds and the drift tests over the reviewed cases (``mahtqa.monitoring.
clinical``) and raises each alert as a safety-alert incident keyed by site
(``clinical:site:<site>``: every signal of a site folds into one incident, so the on-call
radiologist is paged once): a repeat folds into the open incident, and only when the
evidence of that alert (``clinical:<signal>:<site>``) is new (a later case in the window),
so a persisting alert does not add a timeline entry every 30 s.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.clinical.choices import AuditAction
from apps.clinical.services.audit import audit_record
from apps.clinical.services.policy import routing_policy_current
from apps.core.errors import InvalidInput
from apps.monitoring.choices import Trigger
from apps.monitoring.models import MonitorSettings
from apps.monitoring.selectors.clinical import (
    clinical_incidents_active,
    clinical_records,
    clinical_site_incident_key,
    monitor_thresholds,
)
from apps.monitoring.services.incidents import incident_trigger, monitor_settings_get
from mahtqa.monitoring.clinical import (
    confidence_histogram,
    edge_cases,
    monitor_evaluate,
    timeline,
)

logger = logging.getLogger(__name__)

# field -> (type, lowest, highest) accepted from the admin's form
THRESHOLD_FIELDS: dict[str, tuple[type, float, float]] = {
    "window_cases": (int, 10, 1000),
    "max_mre_mm": (float, 0.1, 50.0),
    "max_correction_rate": (float, 0.0, 1.0),
    "max_rejection_rate": (float, 0.0, 1.0),
    "max_ood_rate": (float, 0.0, 1.0),
    "drift_alpha": (float, 1e-6, 0.1),
}


def _thresholds(config: MonitorSettings):
    return monitor_thresholds(config=config, ood_limit=routing_policy_current().max_ood_score)


def clinical_monitor_run(*, now: datetime | None = None) -> dict[str, Any]:
    """Evaluate thresholds and drift; open (or fold into) a safety-alert incident per
    alert, with the window's studies linked. Safe to run twice: the same evidence is
    not triggered again."""
    now = now or timezone.now()
    config = monitor_settings_get()
    records = clinical_records(now=now)
    report = monitor_evaluate(records, thresholds=_thresholds(config))
    # Evidence already raised, by an active incident or one resolved in the last day: an
    # admin resolving while the window still holds the same cases does not re-page.
    rows = clinical_incidents_active(resolved_within=timedelta(days=1))
    seen: dict[str, dict] = {}
    for row in reversed(rows):  # oldest first: the newest incident's evidence wins
        seen.update(row["alerts"])
    opened, folded, unchanged = [], [], []
    for alert in report["alerts"]:
        evidence = {**alert.as_dict(), "last_case": alert.window["last_case"]}
        evidence.pop("case_ids", None)
        last = seen.get(alert.key)
        if last is not None and last.get("last_case") == evidence["last_case"]:
            unchanged.append(alert.key)
            continue
        incident, is_new = incident_trigger(
            trigger=Trigger.SAFETY_ALERT, key=clinical_site_incident_key(alert.site),
            title=f"Clinical monitor: {alert.signal.replace('_', ' ')} at site {alert.site}",
            summary=alert.message, study_ids=alert.study_ids[:200], data=evidence, now=now,
        )  # fmt: skip
        (opened if is_new else folded).append(incident.pk)
        logger.warning("clinical monitor alert %s (incident %s)", alert.key, incident.pk)
    return {
        "cases": len(records), "alerts": [a.key for a in report["alerts"]],
        "opened": opened, "folded": folded, "unchanged": unchanged, "drift": report["drift"],
    }  # fmt: skip


def clinical_report(
    *, now: datetime | None = None, bucket: str | int = "day", site: str = "",
    edge_limit: int = 15,
) -> dict[str, Any]:  # fmt: skip
    """What the page shows: the summaries, time series, histogram, edge cases and the
    alerts of this moment (computed, not stored), and the active incidents."""
    config = monitor_settings_get()
    thresholds = _thresholds(config)
    records = clinical_records(now=now)
    sites = sorted({r.site for r in records})
    shown = [r for r in records if r.site == site] if site else records
    report = monitor_evaluate(records, thresholds=thresholds)
    return {
        **report,
        "config": config, "thresholds": thresholds, "sites": sites, "site": site,
        "shown": len(shown),
        "timeline": timeline(shown, bucket=bucket, ood_limit=thresholds.ood_limit),
        "histogram": confidence_histogram(shown),
        "edge_cases": edge_cases(shown, limit=edge_limit),
        "incidents": clinical_incidents_active(),
    }  # fmt: skip


def monitor_thresholds_update(
    *, user, values: dict[str, Any], ip: str | None = None
) -> MonitorSettings:
    """The admin changes the monitor's thresholds; validated and audited."""
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, (kind, lo, hi) in THRESHOLD_FIELDS.items():
        if name not in values or values[name] in ("", None):
            continue
        try:
            value = kind(values[name])
        except (TypeError, ValueError):
            errors[name] = "not a number"
            continue
        if not (lo <= value <= hi):
            errors[name] = f"must be between {lo:g} and {hi:g}"
            continue
        clean[name] = value
    if errors:
        raise InvalidInput("invalid_thresholds", "Some thresholds are invalid.", details=errors)
    with transaction.atomic():
        config = monitor_settings_get()
        config = MonitorSettings.objects.select_for_update().get(pk=config.pk)
        before = {k: getattr(config, k) for k in clean}
        for k, v in clean.items():
            setattr(config, k, v)
        config.save()
        audit_record(
            actor=user, action=AuditAction.THRESHOLDS_CHANGE, target_type="monitor_settings",
            target_id=str(config.pk), ip=ip,
            details={"before": before, "after": clean},
        )  # fmt: skip
    return config
