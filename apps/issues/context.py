"""Context captured at report time, without the reporter typing it. Always scrubbed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import connection

from mahtqa.phi import Scrubber
from mahtqa.reporting import capture_environment, capture_system_metrics

logger = logging.getLogger(__name__)


def _safe(fn, default: Any = None) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - context is best effort, never fails a report
        logger.warning("issue context: %s failed: %s", fn.__name__, type(exc).__name__)
        return {"error": type(exc).__name__} if default is None else default


def _settings_state() -> dict[str, Any]:
    broker = str(getattr(settings, "CELERY_BROKER_URL", ""))
    return {
        "debug": settings.DEBUG,
        "database_vendor": connection.vendor,
        "broker_scheme": broker.split(":", 1)[0] if broker else "",
        "device": getattr(settings, "MAHTQA_DEVICE", ""),
        "num_threads": getattr(settings, "MAHTQA_NUM_THREADS", None),
        "infer_soft_limit_s": getattr(settings, "MAHTQA_INFER_SOFT_LIMIT_S", None),
        "infer_hard_limit_s": getattr(settings, "MAHTQA_INFER_HARD_LIMIT_S", None),
        "study_lease_s": getattr(settings, "MAHTQA_STUDY_LEASE_S", None),
        "dicom_max_rows": getattr(settings, "DICOM_MAX_ROWS", None),
        "dicom_max_cols": getattr(settings, "DICOM_MAX_COLS", None),
        "time_zone": settings.TIME_ZONE,
    }


def _routing_policy() -> dict[str, Any]:
    from apps.clinical.services import routing_policy_current

    policy = routing_policy_current()
    return {
        "version": policy.version,
        "min_confidence": policy.min_confidence,
        "min_confidence_per_landmark": policy.min_confidence_per_landmark,
        "max_ood_score": policy.max_ood_score,
        "review_policy": policy.review_policy,
        "urgent_severities": policy.urgent_severities,
        "sla_minutes": policy.sla_minutes,
    }


def _active_model() -> dict[str, Any] | None:
    from apps.models.selectors import model_version_active

    active = model_version_active()
    if active is None:
        return None
    return {
        "id": active.pk,
        "name": active.name,
        "version": active.version,
        "sha256": active.sha256[:12],
    }


def configuration_capture() -> dict[str, Any]:
    return {
        "settings": _safe(_settings_state),
        "routing_policy": _safe(_routing_policy),
        "active_model_version": _safe(_active_model),
    }


def context_build(
    *,
    environment: Mapping[str, Any] | None = None,
    system_metrics: Mapping[str, Any] | None = None,
    configuration: Mapping[str, Any] | None = None,
    data_state: Mapping[str, Any] | None = None,
    traces: list[dict[str, Any]] | None = None,
    scrubber: Scrubber,
) -> dict[str, Any]:
    """The five sections. Environment and metrics come from the caller when it ran
    elsewhere (a training machine); otherwise from this process. Scrubbed."""
    config = configuration_capture()
    if configuration:
        config["caller"] = dict(configuration)
    context = {
        "environment": dict(environment) if environment else _safe(capture_environment),
        "configuration": config,
        "system_metrics": dict(system_metrics) if system_metrics else _safe(capture_system_metrics),
        "data_state": dict(data_state or {}),
        "error_traces": list(traces or []),
    }
    return scrubber.data(context)
