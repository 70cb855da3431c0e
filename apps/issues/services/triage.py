"""Triage: severity, status, assignee, comments, bulk updates, merge and split; settings."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from apps.clinical.selectors import phi_scrubber
from apps.core.errors import Conflict, DomainError, InvalidInput
from apps.issues.choices import (
    DONE_STATUSES,
    SEVERITY_RANK,
    TRANSITIONS,
    EventKind,
    Severity,
    Status,
)
from apps.issues.models import Fingerprint, Issue, IssueEvent, IssueSettings, Occurrence

UNCHANGED: Any = object()
TRIAGE_PERM = "accounts.triage_issue"


def issue_settings_get() -> IssueSettings:
    row, _ = IssueSettings.objects.get_or_create(pk=1)
    return row


def issue_settings_update(*, actor: Any, **fields: Any) -> IssueSettings:
    allowed = {
        "critical_due_minutes", "high_due_minutes", "medium_due_minutes", "low_due_minutes",
        "notify_window_minutes", "notify_emails", "webhook_url",
    }  # fmt: skip
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput("invalid_field", f"Unknown settings: {', '.join(sorted(unknown))}.")
    for name, value in fields.items():
        if name.endswith("_minutes") and (not isinstance(value, int) or value <= 0):
            raise InvalidInput("invalid_duration", f"{name} must be a positive number of minutes.")
    row = issue_settings_get()
    for name, value in fields.items():
        setattr(row, name, value)
    row.updated_by = actor
    row.save()
    return row


def assignable_users() -> Any:
    User = get_user_model()  # noqa: N806
    return (
        User.objects.filter(is_active=True)
        .filter(
            Q(groups__permissions__codename="triage_issue")
            | Q(user_permissions__codename="triage_issue")
            | Q(is_superuser=True)
        )
        .distinct()
        .order_by("username")
    )


def _event(issue: Issue, kind: str, actor: Any, now: datetime, **kw: Any) -> IssueEvent:
    return IssueEvent.objects.create(issue=issue, kind=kind, actor=actor, created_at=now, **kw)


def _status_apply(*, issue: Issue, status: str, actor: Any, now: datetime) -> None:
    if status not in Status.values:
        raise InvalidInput("invalid_status", f"status must be one of {Status.values}.")
    if status == issue.status:
        return
    if status not in TRANSITIONS[issue.status]:
        raise Conflict(
            "invalid_transition",
            f"An issue cannot go from {issue.status} to {status}.",
            details={"allowed": sorted(TRANSITIONS[issue.status])},
        )
    _event(issue, EventKind.STATUS, actor, now, from_value=issue.status, to_value=status)
    if status == Status.RESOLVED:
        issue.resolved_at = now
        issue.first_resolved_at = issue.first_resolved_at or now
    elif status == Status.CLOSED:
        issue.closed_at = now
    elif status == Status.REOPENED:
        issue.reopen_count += 1
        issue.closed_at = None
        issue.sla_started_at = now
        issue.due_at = now + issue_settings_get().due_delta(issue.severity)
        issue.overdue_notified_at = None
    issue.status = status


def issue_triage(
    *, issue: Issue, actor: Any, severity: str | None = None, status: str | None = None,
    assignee: Any = UNCHANGED, now: datetime | None = None, resolution_note: str = "",
) -> Issue:  # fmt: skip
    """Set any of severity, status and assignee (``assignee=None`` unassigns).

    ``resolution_note`` (what fixed it; scrubbed) goes with an issue that is, or
    becomes, resolved or closed; it is shown beside similar new reports."""
    now = now or timezone.now()
    reopened = False
    with transaction.atomic():
        issue = Issue.objects.select_for_update().get(pk=issue.pk)
        if issue.merged_into_id:
            raise Conflict("issue_merged", f"Issue {issue.pk} was merged into another.")
        if severity is not None and severity != issue.severity:
            if severity not in Severity.values:
                raise InvalidInput(
                    "invalid_severity", f"severity must be one of {Severity.values}."
                )
            _event(
                issue, EventKind.SEVERITY, actor, now, from_value=issue.severity, to_value=severity
            )
            issue.severity = severity
            # The clock keeps its start; the target follows the new severity.
            issue.due_at = issue.sla_started_at + issue_settings_get().due_delta(severity)
            issue.overdue_notified_at = None
        if status is not None:
            reopened = status == Status.REOPENED and issue.status != Status.REOPENED
            _status_apply(issue=issue, status=status, actor=actor, now=now)
        if assignee is not UNCHANGED and assignee != issue.assignee:
            if assignee is not None and not assignee.has_perm(TRIAGE_PERM):
                raise InvalidInput("invalid_assignee", "The assignee cannot triage issues.")
            _event(
                issue, EventKind.ASSIGNMENT, actor, now,
                from_value=issue.assignee.username if issue.assignee else "",
                to_value=assignee.username if assignee else "",
            )  # fmt: skip
            issue.assignee = assignee
        note = (resolution_note or "").strip()
        if note:  # the page's form sends the note back as it was: unchanged is no change
            note = phi_scrubber(study=issue.study).text(note).strip()[:10_000]
        if note and note != issue.resolution_note:
            if issue.status not in DONE_STATUSES:
                raise InvalidInput(
                    "invalid_resolution_note",
                    "A resolution note goes with resolving or closing the issue.",
                )
            issue.resolution_note = note
            _event(issue, EventKind.COMMENT, actor, now, text=f"Resolution note: {note}")
        issue.save()
        if reopened:
            from apps.issues.services.notify import issue_notify_regression

            issue_notify_regression(issue=issue, now=now)
    return issue


def issue_comment(*, issue: Issue, actor: Any, text: str) -> IssueEvent:
    text = phi_scrubber(study=issue.study).text(text).strip()
    if not text:
        raise InvalidInput("invalid_comment", "A comment needs some text.")
    return _event(issue, EventKind.COMMENT, actor, timezone.now(), text=text[:10_000])


def issue_bulk_update(
    *, issue_ids: Iterable[int], actor: Any, severity: str | None = None,
    status: str | None = None, assignee: Any = UNCHANGED,
) -> dict[str, Any]:  # fmt: skip
    """Apply the same triage to many issues; each succeeds or fails on its own."""
    updated, errors = [], {}
    for issue in Issue.objects.filter(pk__in=list(issue_ids)).order_by("pk"):
        try:
            issue_triage(
                issue=issue, actor=actor, severity=severity, status=status, assignee=assignee
            )
            updated.append(issue.pk)
        except DomainError as exc:
            errors[issue.pk] = exc.message
    return {"updated": updated, "errors": errors}


def issue_merge(*, source: Issue, target: Issue, actor: Any) -> Issue:
    """Fold ``source`` into ``target``: occurrences, fingerprints and counts move."""
    if source.pk == target.pk:
        raise InvalidInput("invalid_merge", "An issue cannot be merged into itself.")
    now = timezone.now()
    with transaction.atomic():
        locked = {
            i.pk: i for i in Issue.objects.select_for_update().filter(pk__in=[source.pk, target.pk])
        }
        source, target = locked[source.pk], locked[target.pk]
        if source.merged_into_id or target.merged_into_id:
            raise Conflict("issue_merged", "One of the issues was already merged.")
        Occurrence.objects.filter(issue=source).update(issue=target)
        Fingerprint.objects.filter(issue=source).update(issue=target)
        target.occurrence_count += source.occurrence_count
        target.first_seen_at = min(target.first_seen_at, source.first_seen_at)
        target.last_seen_at = max(target.last_seen_at, source.last_seen_at)
        if SEVERITY_RANK[source.severity] < SEVERITY_RANK[target.severity]:
            target.severity = source.severity
            target.due_at = min(target.due_at, source.due_at)
        target.recurrence_count += source.recurrence_count
        target.save()
        _event(target, EventKind.MERGE, actor, now, from_value=f"#{source.pk}",
               text=f"Merged #{source.pk} ({source.occurrence_count} occurrences) in")  # fmt: skip
        _event(source, EventKind.MERGE, actor, now, to_value=f"#{target.pk}",
               text=f"Merged into #{target.pk}")  # fmt: skip
        if source.status != Status.CLOSED:
            _event(source, EventKind.STATUS, actor, now, from_value=source.status,
                   to_value=Status.CLOSED)  # fmt: skip
        source.status = Status.CLOSED
        source.closed_at = now
        source.merged_into = target
        source.occurrence_count = 0
        source.save()
    return target


def occurrence_split(*, occurrence: Occurrence, actor: Any) -> Issue:
    """Move one occurrence out of its issue into a new issue of its own."""
    now = timezone.now()
    with transaction.atomic():
        original = Issue.objects.select_for_update().get(pk=occurrence.issue_id)
        if original.occurrence_count <= 1:
            raise InvalidInput("invalid_split", "The only occurrence of an issue cannot be split.")
        fp = hashlib.sha256(f"split|{original.fingerprint}|{occurrence.pk}".encode()).hexdigest()
        title = (
            f"{occurrence.exception_type}: {occurrence.message}"
            if occurrence.exception_type
            else occurrence.message or original.title
        )
        new = Issue.objects.create(
            title=title[:200], description=f"Split out of #{original.pk}.",
            category=original.category, severity=original.severity, source=occurrence.source,
            reporter=occurrence.reporter, fingerprint=fp[:40],
            exception_type=occurrence.exception_type,
            context={**original.context, **occurrence.context,
                     "error_traces": occurrence.traces},
            occurrence_count=1, first_seen_at=occurrence.occurred_at,
            last_seen_at=occurrence.occurred_at, created_at=now, sla_started_at=now,
            due_at=now + issue_settings_get().due_delta(original.severity),
        )  # fmt: skip
        Fingerprint.objects.create(value=fp[:40], issue=new)
        Occurrence.objects.filter(pk=occurrence.pk).update(issue=new)
        span = Occurrence.objects.filter(issue=original).aggregate(
            first=Min("occurred_at"), last=Max("occurred_at")
        )
        original.occurrence_count -= 1
        original.first_seen_at = span["first"] or original.first_seen_at
        original.last_seen_at = span["last"] or original.last_seen_at
        original.save()
        _event(original, EventKind.SPLIT, actor, now, to_value=f"#{new.pk}",
               text=f"Occurrence {occurrence.pk} split out into #{new.pk}")  # fmt: skip
        _event(new, EventKind.SPLIT, actor, now, from_value=f"#{original.pk}",
               text=f"Split out of #{original.pk}")  # fmt: skip
        _event(new, EventKind.CREATED, actor, now, to_value=new.severity, text="Created by split")
    return new
