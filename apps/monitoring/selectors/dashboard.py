"""Reads for the success-metrics dashboard and the monthly pattern report.

The issue tracker's own figures (resolution time by category, first-time fix, recurrence,
uptime) come from its published metrics module; review SLA compliance and incident
MTTA/MTTR are computed here, each in one or two aggregate queries.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from django.utils import timezone

from apps.clinical.selectors import review_task_sla_counts
from apps.issues.choices import Category
from apps.issues.selectors import (
    issue_category_counts,
    issue_slowest_resolved,
    occurrence_top_fingerprints,
)
from apps.monitoring.models import Incident
from apps.monitoring.selectors import percent_of


def review_sla_compliance(*, days: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """Share of review tasks closed by their due time, per priority and per week."""
    now = now or timezone.now()
    counts = review_task_sla_counts(since=now - timedelta(days=days), now=now)
    by_priority = {
        row["priority"]: {
            "done": row["n"],
            "on_time": row["ok"],
            "pct": percent_of(row["ok"], row["n"]),
        }
        for row in counts["by_priority"]
    }
    weekly = [
        {"week": row["week"].date(), "pct": percent_of(row["ok"], row["n"]), "done": row["n"]}
        for row in counts["weekly"]
    ]
    n = sum(v["done"] for v in by_priority.values())
    ok = sum(v["on_time"] for v in by_priority.values())
    return {"days": days, "done": n, "on_time": ok, "pct": percent_of(ok, n),
            "by_priority": by_priority, "weekly": weekly,
            "overdue_open": counts["overdue_open"]}  # fmt: skip


def incident_response_times(*, days: int = 90, now: datetime | None = None) -> dict[str, Any]:
    """MTTA (opened -> acknowledged) and MTTR (opened -> resolved) in minutes, overall and
    per trigger, over incidents opened in the window."""
    now = now or timezone.now()
    rows = list(
        Incident.objects.filter(opened_at__gte=now - timedelta(days=days)).values_list(
            "trigger", "opened_at", "acknowledged_at", "resolved_at"
        )
    )

    def minutes(pairs: list[tuple[datetime, datetime | None]]) -> list[float]:
        return [(b - a).total_seconds() / 60 for a, b in pairs if b is not None]

    def stats(values: list[float]) -> dict[str, Any]:
        if not values:
            return {"n": 0, "mean": None, "median": None}
        return {"n": len(values), "mean": round(sum(values) / len(values), 1),
                "median": round(median(values), 1)}  # fmt: skip

    by_trigger = {}
    for trigger in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == trigger]
        by_trigger[trigger] = {
            "opened": len(mine),
            "mtta": stats(minutes([(r[1], r[2]) for r in mine])),
            "mttr": stats(minutes([(r[1], r[3]) for r in mine])),
        }
    return {
        "days": days,
        "opened": len(rows),
        "mtta": stats(minutes([(r[1], r[2]) for r in rows])),
        "mttr": stats(minutes([(r[1], r[3]) for r in rows])),
        "by_trigger": by_trigger,
    }


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime(month.year, month.month, 1))
    nxt = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return start, timezone.make_aware(datetime(nxt.year, nxt.month, 1))


def monthly_pattern_report(*, month: date, top: int = 10) -> dict[str, Any]:
    """The guide's monthly issue-pattern analysis: top recurring fingerprints, categories
    trending against the month before, and the slowest resolutions of the month."""
    start, end = month_bounds(month)
    prev_start, _ = month_bounds((start - timedelta(days=1)).date())
    recurring = occurrence_top_fingerprints(start=start, end=end, top=top)
    counts = issue_category_counts(windows={"now": (start, end), "prev": (prev_start, start)})
    categories = [
        {"category": c, "label": Category(c).label, "this_month": counts[f"{c}_now"],
         "previous": counts[f"{c}_prev"], "change": counts[f"{c}_now"] - counts[f"{c}_prev"]}
        for c in Category.values
    ]  # fmt: skip
    categories.sort(key=lambda r: (-r["change"], r["category"]))
    slowest = [
        {"id": i.pk, "title": i.title, "category": i.category,
         "hours": round((i.first_resolved_at - i.created_at).total_seconds() / 3600, 1)}
        for i in issue_slowest_resolved(start=start, end=end, top=top)
    ]  # fmt: skip
    return {
        "month": start.date(),
        "recurring": [
            {
                "fingerprint": r["fingerprint"][:16],
                "issue": r["issue_id"],
                "title": r["issue__title"],
                "category": r["issue__category"],
                "occurrences": r["n"],
            }
            for r in recurring
        ],  # fmt: skip
        "categories": categories,
        "slowest": slowest,
    }
