"""Resolution metrics, computed by database aggregates (no Python loops over rows).

Definitions (docs/issues.md):
- resolution time: first resolution - creation, per category; median and p90
  (``percentile_cont``: linear interpolation, as PostgreSQL defines it);
- first-time fix rate: of the issues ever resolved, the share never reopened;
- recurrence rate: of the issues ever resolved, the share seen again after a resolution;
- due-time compliance: of the issues now resolved or closed after a resolution in
  their current response clock, the share resolved by their due time;
- open issues by age: active issues by time since creation;
- uptime: share of recorded readiness checks that passed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
)
from django.utils import timezone

from apps.core.charts import bar_chart, grouped_bar_chart
from apps.issues.choices import ACTIVE_STATUSES, DONE_STATUSES, Category
from apps.issues.models import Issue
from apps.monitoring.selectors import readiness_uptime

AGE_BUCKETS: list[tuple[str, timedelta, timedelta | None]] = [
    ("< 1 day", timedelta(0), timedelta(days=1)),
    ("1-3 days", timedelta(days=1), timedelta(days=3)),
    ("3-7 days", timedelta(days=3), timedelta(days=7)),
    ("7-30 days", timedelta(days=7), timedelta(days=30)),
    ("30+ days", timedelta(days=30), None),
]


class Epoch(Func):
    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


class PercentileCont(Aggregate):
    """PostgreSQL ``percentile_cont(p) WITHIN GROUP (ORDER BY expr)``."""

    function = "percentile_cont"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, percentile: float, **extra: Any) -> None:
        super().__init__(expression, percentile=float(percentile), **extra)


def _issues() -> QuerySet[Issue]:
    return Issue.objects.filter(merged_into__isnull=True)


def _duration() -> ExpressionWrapper:
    return ExpressionWrapper(F("first_resolved_at") - F("created_at"), output_field=DurationField())


def _percentile_portable(qs: QuerySet, p: float) -> float | None:
    """percentile_cont by two indexed fetches (backends without it, e.g. SQLite)."""
    n = qs.count()
    if n == 0:
        return None
    pos = (n - 1) * p
    lo = int(pos)
    values = list(qs.annotate(d=_duration()).order_by("d").values_list("d", flat=True)[lo : lo + 2])
    low = values[0].total_seconds()
    high = values[-1].total_seconds()
    return low + (high - low) * (pos - lo)


def resolution_by_category(*, portable: bool | None = None) -> list[dict[str, Any]]:
    """Per category: resolved count, median and p90 hours to first resolution."""
    resolved = _issues().filter(first_resolved_at__isnull=False)
    if portable is None:
        portable = connection.vendor != "postgresql"
    rows: dict[str, dict[str, Any]] = {}
    if not portable:
        seconds = Epoch(_duration())
        for row in (
            resolved.values("category")
            .annotate(
                n=Count("id"),
                median=PercentileCont(seconds, 0.5),
                p90=PercentileCont(seconds, 0.9),
            )
            .order_by()
        ):
            rows[row["category"]] = row
    else:
        for row in resolved.values("category").annotate(n=Count("id")).order_by():
            qs = resolved.filter(category=row["category"])
            rows[row["category"]] = {
                **row,
                "median": _percentile_portable(qs, 0.5),
                "p90": _percentile_portable(qs, 0.9),
            }
    result = []
    for value, label in Category.choices:
        row = rows.get(value)
        result.append(
            {
                "category": value, "label": label, "resolved": row["n"] if row else 0,
                "median_h": round(row["median"] / 3600, 2) if row else None,
                "p90_h": round(row["p90"] / 3600, 2) if row else None,
            }
        )  # fmt: skip
    return result


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def rates() -> dict[str, Any]:
    """First-time fix, recurrence and due-time compliance, in one query."""
    ever = Q(first_resolved_at__isnull=False)
    done_in_clock = Q(
        status__in=DONE_STATUSES,
        resolved_at__isnull=False,
        resolved_at__gte=F("sla_started_at"),
    )
    agg = _issues().aggregate(
        resolved=Count("id", filter=ever),
        never_reopened=Count("id", filter=ever & Q(reopen_count=0)),
        recurred=Count("id", filter=ever & Q(recurrence_count__gt=0)),
        done=Count("id", filter=done_in_clock),
        on_time=Count("id", filter=done_in_clock & Q(resolved_at__lte=F("due_at"))),
        open=Count("id", filter=Q(status__in=ACTIVE_STATUSES)),
        overdue=Count("id", filter=Q(status__in=ACTIVE_STATUSES, due_at__lt=timezone.now())),
    )
    return {
        **agg,
        "first_time_fix_pct": _pct(agg["never_reopened"], agg["resolved"]),
        "recurrence_pct": _pct(agg["recurred"], agg["resolved"]),
        "due_compliance_pct": _pct(agg["on_time"], agg["done"]),
    }


def open_by_age(*, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or timezone.now()
    counts = {}
    for i, (_, low, high) in enumerate(AGE_BUCKETS):
        cond = Q(created_at__lte=now - low)
        if high is not None:
            cond &= Q(created_at__gt=now - high)
        counts[f"b{i}"] = Count("id", filter=cond)
    agg = _issues().filter(status__in=ACTIVE_STATUSES).aggregate(**counts)
    return [{"label": label, "count": agg[f"b{i}"]} for i, (label, _, _) in enumerate(AGE_BUCKETS)]


def uptime(*, now: datetime | None = None, days: int = 14) -> dict[str, Any]:
    """Readiness uptime, from the monitoring app's published selector."""
    return readiness_uptime(now=now, days=days)


def metrics_page_context() -> dict[str, Any]:
    resolution = resolution_by_category()
    ages = open_by_age()
    up = uptime()
    return {
        "resolution": resolution,
        "rates": rates(),
        "ages": ages,
        "uptime": up,
        "resolution_chart": grouped_bar_chart(
            [(r["label"], r["median_h"] or 0, r["p90_h"] or 0) for r in resolution],
            series=("median", "p90"),
            unit="h",
            title="Hours to first resolution by category",
        ),  # fmt: skip
        "age_chart": bar_chart(
            [(a["label"], a["count"]) for a in ages], unit="", title="Open issues by age"
        ),
        "uptime_chart": bar_chart(
            [(f"{d['day']:%m-%d}", d["uptime_pct"] or 0) for d in up["daily"]],
            unit="%",
            title="Readiness uptime per day",
            max_value=100,
        ),  # fmt: skip
    }
