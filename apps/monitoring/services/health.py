"""Proactive health checks on beat: gather the figures, rate them (mahtqa.monitoring.health),
keep the history (HealthRun/HealthResult), and open an incident for what is red and is
an escalation trigger (security -> security breach; stuck queues -> system down)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from statistics import fmean, pstdev

import psutil
from django.conf import settings
from django.utils import timezone

from apps.accounts.choices import SecurityEventKind
from apps.accounts.selectors import api_token_stale_count, security_event_counts
from apps.clinical.choices import ReviewOutcome
from apps.clinical.selectors import (
    prediction_ood_rows,
    review_decision_rows,
    review_task_live_summary,
    study_queued_summary,
)
from apps.clinical.services.policy import routing_policy_current
from apps.monitoring.models import HealthResult, HealthRun
from apps.monitoring.services.incidents import incident_trigger, monitor_settings_get
from apps.outbox.selectors import outbox_live_summary
from mahtqa.cephalometry.metrics import review_errors_mm
from mahtqa.monitoring import health

WINDOW = timedelta(hours=24)
REFERENCE = timedelta(days=30)
STALE_TOKEN_DAYS = 90
# A queue whose oldest waiting item is older than this is red (and "system down").
QUEUE_MAX_AGE_S = 600.0


def _age_s(oldest: datetime | None, now: datetime) -> float:
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


def _system() -> health.Result:
    disk = shutil.disk_usage(settings.MEDIA_ROOT)
    return health.system_resources(
        cpu_pct=psutil.cpu_percent(interval=0.2), mem_pct=psutil.virtual_memory().percent,
        disk_pct=100.0 * disk.used / disk.total, disk_free_gb=disk.free / 1e9,
    )  # fmt: skip


def _queues(now: datetime) -> health.Result:
    studies, outbox = study_queued_summary(), outbox_live_summary()
    queues = {
        "inference (studies)": {"depth": studies["n"], "oldest_s": _age_s(studies["oldest"], now)},
        "outbox": {"depth": outbox["n"], "oldest_s": _age_s(outbox["oldest"], now)},
    }
    return health.queue_depth(queues=queues, max_age_s=QUEUE_MAX_AGE_S)


def _backlog(now: datetime) -> health.Result:
    agg = review_task_live_summary(now=now)
    return health.review_backlog(
        open_tasks=agg["n"], overdue=agg["overdue"],
        oldest_overdue_min=_age_s(agg["oldest"], now) / 60,
    )  # fmt: skip


def _performance(now: datetime) -> health.Result:
    config = monitor_settings_get()
    reviews = review_decision_rows(since=now - WINDOW, limit=5000)
    errors = []
    for outcome, before, after, sr, sc in reviews:
        if outcome == ReviewOutcome.REJECTED or not after or not sr:
            continue
        found = review_errors_mm(before, after, (sr, sc))
        if found is not None:
            errors.extend(found.tolist())
    outcomes = [r[0] for r in reviews]
    return health.model_performance(
        reviewed=len(reviews), corrected=outcomes.count(ReviewOutcome.CORRECTED),
        rejected=outcomes.count(ReviewOutcome.REJECTED),
        mre_mm=fmean(errors) if errors else None,
        max_correction_rate=config.max_correction_rate, max_mre_mm=config.max_mre_mm,
    )  # fmt: skip


def _intensity(details: dict) -> float | None:
    value = (details or {}).get("mean", {})
    return value.get("value") if isinstance(value, dict) else None


def _drift(now: datetime) -> health.Result:
    limit = routing_policy_current().max_ood_score
    rows = prediction_ood_rows(since=now - REFERENCE, limit=20000)
    recent = [r for r in rows if r[0] >= now - WINDOW]
    before = [r for r in rows if r[0] < now - WINDOW]
    rate = lambda rs: sum(r[1] > limit for r in rs) / len(rs) if rs else 0.0  # noqa: E731
    ref = [v for v in (_intensity(r[2]) for r in before) if v is not None]
    cur = [v for v in (_intensity(r[2]) for r in recent) if v is not None]
    return health.input_drift(
        recent_n=len(recent), recent_ood_rate=rate(recent),
        reference_ood_rate=rate(before) if before else rate(recent),
        recent_mean_intensity=fmean(cur) if cur else None,
        reference_mean_intensity=fmean(ref) if len(ref) >= 20 else None,
        reference_sd_intensity=pstdev(ref) if len(ref) >= 20 else None,
    )  # fmt: skip


def _security(now: datetime) -> health.Result:
    counts = security_event_counts(since=now - timedelta(hours=1))
    return health.security_status(
        failed_logins=counts.get(SecurityEventKind.LOGIN_FAILED, 0),
        lockouts=counts.get(SecurityEventKind.LOCKED_OUT, 0),
        token_failures=counts.get(SecurityEventKind.TOKEN_FAILED, 0)
        + counts.get(SecurityEventKind.TOKEN_THROTTLED, 0),
        stale_tokens=api_token_stale_count(now=now, days=STALE_TOKEN_DAYS), window_h=1,
        stale_days=STALE_TOKEN_DAYS,
    )  # fmt: skip


def _storage(now: datetime) -> health.Result:
    disk = shutil.disk_usage(settings.MEDIA_ROOT)
    earlier = (
        HealthResult.objects.filter(
            code="storage_growth", run__ran_at__lte=now - timedelta(hours=1)
        )
        .select_related("run")
        .order_by("-run__ran_at")
        .first()
    )
    return health.storage_growth(
        used_bytes=float(disk.used), free_bytes=float(disk.free),
        earlier_used_bytes=earlier.value if earlier else None,
        earlier_age_h=(now - earlier.run.ran_at).total_seconds() / 3600 if earlier else None,
    )  # fmt: skip


CHECKS = {
    "system_resources": lambda now: _system(),
    "queue_depth": _queues,
    "review_backlog": _backlog,
    "model_performance": _performance,
    "input_drift": _drift,
    "security_status": _security,
    "storage_growth": _storage,
}
TRIGGERS = {"security_status": "security_breach", "queue_depth": "system_down"}


def health_run(*, source: str = "beat", now: datetime | None = None) -> HealthRun:
    """Run every check, keep the results, and raise incidents for red triggers."""
    now = now or timezone.now()
    results = []
    for code, check in CHECKS.items():
        try:
            results.append(check(now))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            results.append(health.Result(code, health.RED, f"Check failed: {type(exc).__name__}",
                                         "See the worker log for the traceback."))  # fmt: skip
    run = HealthRun.objects.create(
        ran_at=now, source=source[:20], status=health.worst([r.status for r in results])
    )
    HealthResult.objects.bulk_create(
        HealthResult(
            run=run,
            code=r.code,
            status=r.status,
            message=r.message[:500],
            recommendation=r.recommendation[:500],
            value=r.value,
            data=r.data,
        )  # fmt: skip
        for r in results
    )
    for r in results:
        if r.status == health.RED and r.code in TRIGGERS:
            incident_trigger(
                trigger=TRIGGERS[r.code], key=f"health:{r.code}", title=r.message[:200],
                summary=r.recommendation, data={"check": r.code, **r.data}, now=now,
            )  # fmt: skip
    return run


def health_runs_prune(*, older_than: timedelta = timedelta(days=90)) -> int:
    deleted, _ = HealthRun.objects.filter(ran_at__lt=timezone.now() - older_than).delete()
    return deleted
