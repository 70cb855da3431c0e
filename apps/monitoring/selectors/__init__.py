"""Reads for monitoring, published for other apps (issues: uptime on the metrics page)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.monitoring.choices import ACTIVE_INCIDENT_STATUSES
from apps.monitoring.models import Heartbeat, Incident, ReadinessCheck, WorkerEnvironment


def percent_of(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def readiness_uptime(*, now: datetime | None = None, days: int = 14) -> dict[str, Any]:
    """Share of passing readiness runs per window (24 h, 7 d, 30 d) and per day."""
    now = now or timezone.now()
    windows = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
    agg = ReadinessCheck.objects.aggregate(
        **{f"n_{k}": Count("id", filter=Q(checked_at__gt=now - w)) for k, w in windows.items()},
        **{
            f"ok_{k}": Count("id", filter=Q(checked_at__gt=now - w, ok=True))
            for k, w in windows.items()
        },
    )
    daily = list(
        ReadinessCheck.objects.filter(checked_at__gt=now - timedelta(days=days))
        .annotate(day=TruncDate("checked_at"))
        .values("day")
        .annotate(n=Count("id"), ok=Count("id", filter=Q(ok=True)))
        .order_by("day")
    )
    return {
        "windows": {
            k: {"checks": agg[f"n_{k}"], "uptime_pct": percent_of(agg[f"ok_{k}"], agg[f"n_{k}"])}
            for k in windows
        },
        "daily": [
            {"day": row["day"], "checks": row["n"], "uptime_pct": percent_of(row["ok"], row["n"])}
            for row in daily
        ],
    }


WORKER_PREFIX = "worker:"


def worker_keys_alive(*, within_s: float, now: datetime | None = None) -> set[str]:
    """Keys (``hostname:main-pid``) of workers whose main process beat within ``within_s``."""
    since = (now or timezone.now()) - timedelta(seconds=within_s)
    sources = Heartbeat.objects.filter(
        source__startswith=WORKER_PREFIX, seen_at__gte=since
    ).values_list("source", flat=True)
    return {s.removeprefix(WORKER_PREFIX) for s in sources}


def incident_list(*, status: str = "", trigger: str = "", limit: int = 200) -> list[Incident]:
    """Incidents, newest first, active ones first."""
    qs = Incident.objects.all()
    if status == "active":
        qs = qs.filter(status__in=ACTIVE_INCIDENT_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if trigger:
        qs = qs.filter(trigger=trigger)
    return list(qs.order_by("-opened_at")[:limit])


def incident_get(*, pk: int) -> Incident | None:
    """One incident with its timeline, cascade, and linked issues and studies (4 queries)."""
    return (
        Incident.objects.filter(pk=pk)
        .prefetch_related("events", "notifications", "issues", "studies")
        .first()
    )


def incidents_active_count() -> int:
    return Incident.objects.filter(status__in=ACTIVE_INCIDENT_STATUSES).count()


def worker_environment_list(
    *, stale_after_s: float, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Every worker x queue's latest environment report, worst first, with its age.

    A report older than ``stale_after_s`` is stale: shown amber at least (the worker may be
    gone, or no longer consumes that queue). ``failing`` lists the checks not green.
    """
    now = now or timezone.now()
    rank = {"green": 0, "amber": 1, "red": 2}
    rows = []
    for env in WorkerEnvironment.objects.all():
        age_s = max((now - env.reported_at).total_seconds(), 0.0)
        stale = age_s > stale_after_s
        shown = "amber" if stale and env.status == "green" else env.status
        failing = [c for c in env.checks if c.get("status") != "green"]
        rows.append(
            {"env": env, "age_s": round(age_s), "stale": stale, "status": shown,
             "failing": failing, "checks": env.checks, "facts": env.facts}
        )  # fmt: skip
    rows.sort(key=lambda r: (-rank.get(r["status"], 0), r["env"].hostname, r["env"].queue))
    return rows
