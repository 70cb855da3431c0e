"""Filing reports: fingerprint, fold into an issue or open one, reopen on recurrence."""

from __future__ import annotations

import hashlib
import logging
import socket
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.clinical.selectors import phi_scrubber
from apps.core.errors import InvalidInput
from apps.issues.choices import DONE_STATUSES, Category, EventKind, Severity, Source, Status
from apps.issues.context import context_build
from apps.issues.fingerprint import fingerprint_compute
from apps.issues.models import Fingerprint, Issue, IssueEvent, Occurrence, ReproductionStep
from apps.issues.services.notify import issue_notify_new_critical, issue_notify_regression
from apps.issues.services.triage import issue_settings_get

logger = logging.getLogger(__name__)

MAX_STEPS = 50


def _fingerprint(*, category: str, given: str, exception_type: str, frames, message: str) -> str:
    if given:
        # Namespaced so a caller cannot collide with computed fingerprints.
        return hashlib.sha256(f"client|{category}|{given}".encode()).hexdigest()[:40]
    return fingerprint_compute(
        category=category, exception_type=exception_type, frames=frames, message=message
    )


def _issue_create(
    *, fingerprint: str, now: datetime, fields: dict[str, Any], steps: list[str],
    reporter: Any,
) -> Issue:  # fmt: skip
    due = now + issue_settings_get().due_delta(fields["severity"])
    issue = Issue.objects.create(
        fingerprint=fingerprint, first_seen_at=now, last_seen_at=now, created_at=now,
        sla_started_at=now, due_at=due, occurrence_count=0, reporter=reporter, **fields,
    )  # fmt: skip
    Fingerprint.objects.create(value=fingerprint, issue=issue)
    ReproductionStep.objects.bulk_create(
        [ReproductionStep(issue=issue, position=i, text=t) for i, t in enumerate(steps, 1)]
    )
    IssueEvent.objects.create(
        issue=issue, kind=EventKind.CREATED, actor=reporter, created_at=now,
        to_value=issue.severity, text=f"Reported via {issue.get_source_display()}",
    )  # fmt: skip
    return issue


def issue_report(
    *,
    title: str,
    category: str,
    severity: str,
    description: str = "",
    reporter: Any = None,
    source: str = Source.API,
    exception_type: str = "",
    message: str = "",
    traces: list[dict[str, Any]] | None = None,
    environment: Mapping[str, Any] | None = None,
    system_metrics: Mapping[str, Any] | None = None,
    configuration: Mapping[str, Any] | None = None,
    data_state: Mapping[str, Any] | None = None,
    reproduction_steps: Iterable[str] = (),
    study: Any = None,
    dataset_name: str = "",
    dataset_version: Any = None,
    model_version: Any = None,
    fingerprint: str = "",
    phi_values: Iterable[str] = (),
    host: str = "",
    now: datetime | None = None,
) -> tuple[Issue, bool]:
    """File a report. Returns ``(issue, created)``.

    A report whose fingerprint is known folds into its issue (count + 1, last
    seen); if that issue was resolved or closed it is reopened and counts a
    recurrence. Everything stored is scrubbed of PHI first.
    """
    if category not in Category.values:
        raise InvalidInput("invalid_category", f"category must be one of {Category.values}.")
    if severity not in Severity.values:
        raise InvalidInput("invalid_severity", f"severity must be one of {Severity.values}.")
    now = now or timezone.now()
    # Everything stored is scrubbed against the patterns, the linked study's own
    # identifiers, the caller's phi_values and the index of every identifier held.
    scrub = phi_scrubber(study=study, values=list(phi_values))
    traces = scrub.data(list(traces or []))
    innermost = traces[-1] if traces else {}
    exception_type = scrub.text(exception_type or innermost.get("type", ""))[:200]
    message = scrub.text(message or innermost.get("message", "") or title)
    title = scrub.text(title).strip()[:200]
    if not title:
        raise InvalidInput("invalid_title", "title must not be empty.")
    steps = [scrub.text(s) for s in reproduction_steps if str(s).strip()][:MAX_STEPS]
    fp = _fingerprint(
        category=category, given=fingerprint, exception_type=exception_type,
        frames=innermost.get("frames") or [], message=message,
    )  # fmt: skip
    known_issue_id = Fingerprint.objects.filter(value=fp).values_list("issue_id", flat=True).first()
    occurrence_context = scrub.data(
        {"data_state": dict(data_state or {}), "system_metrics": dict(system_metrics or {})}
    )
    issue_context = None
    if known_issue_id is None:  # full capture only for a new issue (repeats stay cheap)
        issue_context = context_build(
            environment=environment, system_metrics=system_metrics, configuration=configuration,
            data_state=data_state, traces=traces, scrubber=scrub,
        )  # fmt: skip
    fields = {
        "title": title, "description": scrub.text(description),
        "category": category, "severity": severity, "source": source,
        "exception_type": exception_type, "study": study,
        "dataset_name": scrub.text(dataset_name or str(dataset_version or ""))[:200],
        "dataset_version": dataset_version,
        "model_version": model_version, "context": issue_context or {},
    }  # fmt: skip

    created = False
    reopened = False
    with transaction.atomic():
        row = known_issue_id
        if row is None:
            try:
                with transaction.atomic():
                    if issue_context is None:
                        fields["context"] = context_build(
                            environment=environment, system_metrics=system_metrics,
                            configuration=configuration, data_state=data_state, traces=traces,
                            scrubber=scrub,
                        )  # fmt: skip
                    issue = _issue_create(
                        fingerprint=fp, now=now, fields=fields, steps=steps, reporter=reporter
                    )
                    created = True
            except IntegrityError:  # the same new error reported concurrently
                row = Fingerprint.objects.values_list("issue_id", flat=True).get(value=fp)
        if not created:
            locked = Issue.objects.select_for_update().defer("context", "description")
            issue = locked.get(pk=row)
            if issue.merged_into_id:  # merged since the lookup above
                issue = locked.get(pk=issue.merged_into_id)
            if issue.status in DONE_STATUSES:
                reopened = True
                settings_row = issue_settings_get()
                IssueEvent.objects.create(
                    issue=issue, kind=EventKind.RECURRENCE, actor=reporter, created_at=now,
                    from_value=issue.status, to_value=Status.REOPENED,
                    text="Seen again after it was resolved",
                )  # fmt: skip
                issue.status = Status.REOPENED
                issue.reopen_count += 1
                issue.recurrence_count += 1
                issue.closed_at = None
                issue.sla_started_at = now
                issue.due_at = now + settings_row.due_delta(issue.severity)
                issue.overdue_notified_at = None
                issue.save(
                    update_fields=[
                        "status", "reopen_count", "recurrence_count", "closed_at",
                        "sla_started_at", "due_at", "overdue_notified_at", "updated_at",
                    ]
                )  # fmt: skip
        Occurrence.objects.create(
            issue=issue, fingerprint=fp, occurred_at=now, source=source, reporter=reporter,
            message=message, exception_type=exception_type, traces=traces,
            context=occurrence_context, host=(host or socket.gethostname())[:200],
        )  # fmt: skip
        # The row is locked (or new in this transaction): the count is exact.
        issue.occurrence_count += 1
        issue.last_seen_at = max(issue.last_seen_at, now)
        Issue.objects.filter(pk=issue.pk).update(
            occurrence_count=issue.occurrence_count, last_seen_at=issue.last_seen_at
        )
        if created and issue.severity == Severity.CRITICAL:
            issue_notify_new_critical(issue=issue, now=now)
        if reopened:
            issue_notify_regression(issue=issue, now=now)
    return issue, created


_TASK_CATEGORIES = (
    ("train", Category.TRAINING),
    ("eval", Category.EVALUATION),
    ("dataset", Category.DATA),
    ("clinical", Category.DEPLOYMENT),
)


def issue_report_task_failure(
    *, task_name: str, exception: BaseException, traces: list[dict[str, Any]],
    task_id: str = "",
) -> Issue:  # fmt: skip
    """A failed Celery task files (or folds into) an issue. Arguments are never stored:
    they may carry identifiers."""
    category = next((c for k, c in _TASK_CATEGORIES if k in task_name), Category.DEPLOYMENT)
    issue, _ = issue_report(
        title=f"Task {task_name} failed: {type(exception).__name__}",
        description=f"The Celery task {task_name} raised {type(exception).__name__}.",
        category=category, severity=Severity.HIGH, source=Source.CELERY, traces=traces,
        data_state={"task": task_name, "task_id": task_id},
    )  # fmt: skip
    return issue


def issue_report_check_failure(
    *, app: str, check: str, error: str, severity: str = Severity.HIGH,
    category: str = Category.DEPLOYMENT, details: Mapping[str, Any] | None = None,
    description: str = "", dataset_version: Any = None,
) -> Issue:  # fmt: skip
    """A failed check of another app (readiness, dataset integrity...) files or folds."""
    issue, _ = issue_report(
        title=f"Check {app}.{check} failed: {error}", description=description,
        category=category, severity=severity, source=Source.CHECK, dataset_version=dataset_version,
        exception_type=f"check.{app}.{check}", message=error,
        fingerprint=f"check|{app}|{check}|{error}",
        data_state={"app": app, "check": check, "error": error, **dict(details or {})},
    )  # fmt: skip
    return issue
