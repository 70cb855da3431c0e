"""Reads for the issue tracker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from apps.issues.choices import ACTIVE_STATUSES, Category, Severity, Status
from apps.issues.models import Issue, IssueEvent, Occurrence

SORTS = {
    "due": ("due_at", "id"),
    "-due": ("-due_at", "-id"),
    "severity": ("severity_rank", "due_at", "id"),
    "-severity": ("-severity_rank", "due_at", "id"),
    "last_seen": ("last_seen_at", "id"),
    "-last_seen": ("-last_seen_at", "-id"),
    "count": ("occurrence_count", "id"),
    "-count": ("-occurrence_count", "-id"),
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
}
DEFAULT_SORT = "severity"


@dataclass(frozen=True)
class IssueFilters:
    category: str = ""
    severity: str = ""
    status: str = ""  # "" = active ones, "all" = every status
    assignee: str = ""  # username, "none" for unassigned, "me"
    overdue: bool = False
    q: str = ""
    sort: str = DEFAULT_SORT

    @classmethod
    def from_query(cls, query: Any) -> IssueFilters:
        def pick(name: str, allowed: list[str]) -> str:
            value = str(query.get(name, "") or "")
            return value if value in allowed else ""

        sort = str(query.get("sort", "") or "")
        return cls(
            category=pick("category", Category.values),
            severity=pick("severity", Severity.values),
            status=pick("status", [*Status.values, "all"]),
            assignee=str(query.get("assignee", "") or "")[:150],
            overdue=str(query.get("overdue", "")) in ("1", "true", "on"),
            q=str(query.get("q", "") or "")[:200],
            sort=sort if sort in SORTS else DEFAULT_SORT,
        )


def _severity_rank() -> Case:
    return Case(
        *[When(severity=s, then=Value(i)) for i, s in enumerate(Severity.values)],
        output_field=IntegerField(),
    )


def issue_list(
    *, filters: IssueFilters | None = None, user: Any = None, now: datetime | None = None
) -> QuerySet[Issue]:
    filters = filters or IssueFilters()
    now = now or timezone.now()
    qs = Issue.objects.filter(merged_into__isnull=True).select_related("assignee")
    if filters.category:
        qs = qs.filter(category=filters.category)
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.status == "all":
        pass
    elif filters.status:
        qs = qs.filter(status=filters.status)
    else:
        qs = qs.filter(status__in=ACTIVE_STATUSES)
    if filters.assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif filters.assignee == "me" and user is not None:
        qs = qs.filter(assignee=user)
    elif filters.assignee:
        qs = qs.filter(assignee__username=filters.assignee)
    if filters.overdue:
        qs = qs.filter(status__in=ACTIVE_STATUSES, due_at__lt=now)
    if filters.q:
        qs = qs.filter(title__icontains=filters.q)
    qs = qs.annotate(severity_rank=_severity_rank())
    return qs.order_by(*SORTS[filters.sort]).defer("context", "description")


def issue_exists(*, issue_id: int) -> bool:
    """Published for other apps (incidents link issues by number)."""
    return Issue.objects.filter(pk=issue_id).exists()


def issue_get(*, pk: int) -> Issue:
    return Issue.objects.select_related(
        "assignee", "reporter", "study", "model_version", "merged_into"
    ).get(pk=pk)


def issue_timeline(*, issue: Issue, limit: int = 200) -> list[dict[str, Any]]:
    """Events and occurrences in one chronological list (the latest ``limit`` of each)."""
    events = list(
        IssueEvent.objects.filter(issue=issue)
        .select_related("actor")
        .order_by("-created_at")[:limit]
    )
    occurrences = list(
        Occurrence.objects.filter(issue=issue)
        .select_related("reporter")
        .only("id", "occurred_at", "message", "exception_type", "source", "host", "reporter")
        .order_by("-occurred_at")[:limit]
    )
    items = [{"at": e.created_at, "kind": e.kind, "event": e} for e in events]
    items += [{"at": o.occurred_at, "kind": "occurrence", "occurrence": o} for o in occurrences]
    items.sort(key=lambda item: (item["at"], item["kind"] != "created"))
    return items


def issue_occurrences(*, issue: Issue, limit: int = 50) -> QuerySet[Occurrence]:
    return Occurrence.objects.filter(issue=issue).order_by("-occurred_at", "-id")[:limit]


# --- Figures for monitoring (published to apps.monitoring) ---


def issue_active_summary(*, now: datetime) -> dict[str, dict[str, Any]]:
    """Issues still being worked, per severity: ``n`` and ``overdue`` (past due)."""
    rows = (
        Issue.objects.filter(status__in=ACTIVE_STATUSES)
        .values("severity")
        .annotate(n=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now)))
        .order_by()
    )
    return {row["severity"]: row for row in rows}


def occurrence_top_fingerprints(*, start: datetime, end: datetime, top: int) -> list[dict]:
    """The ``top`` fingerprints by occurrences in [start, end), with their issue."""
    return list(
        Occurrence.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .values("fingerprint", "issue_id", "issue__title", "issue__category")
        .annotate(n=Count("id"))
        .order_by("-n", "issue_id")[:top]
    )


def issue_category_counts(*, windows: dict[str, tuple[datetime, datetime]]) -> dict[str, int]:
    """Issues (not merged away) created per category in each named window:
    ``{f"{category}_{window}": n}``, one query."""
    return Issue.objects.filter(merged_into__isnull=True).aggregate(**{
        f"{c}_{w}": Count("id", filter=Q(category=c, created_at__gte=a, created_at__lt=b))
        for c in Category.values for w, (a, b) in windows.items()
    })  # fmt: skip


def issue_slowest_resolved(*, start: datetime, end: datetime, top: int) -> list[Issue]:
    """The ``top`` issues first resolved in [start, end) that took longest."""
    return list(
        Issue.objects.filter(
            merged_into__isnull=True, first_resolved_at__gte=start, first_resolved_at__lt=end
        ).order_by(F("created_at") - F("first_resolved_at"))[:top]
    )
