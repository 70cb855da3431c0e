"""Issues, their occurrences, timeline events, fingerprints, settings and notifications."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.issues.choices import Category, EventKind, NotificationKind, Severity, Source, Status

DEFAULT_DUE_MINUTES = {
    Severity.CRITICAL: 60,  # immediate
    Severity.HIGH: 8 * 60,  # same day
    Severity.MEDIUM: 3 * 24 * 60,  # 1-3 days
    Severity.LOW: 14 * 24 * 60,  # next sprint
}


class IssueSettings(models.Model):
    """Admin-configurable response targets and notification limits (a single row, pk=1)."""

    critical_due_minutes = models.PositiveIntegerField(default=DEFAULT_DUE_MINUTES["critical"])
    high_due_minutes = models.PositiveIntegerField(default=DEFAULT_DUE_MINUTES["high"])
    medium_due_minutes = models.PositiveIntegerField(default=DEFAULT_DUE_MINUTES["medium"])
    low_due_minutes = models.PositiveIntegerField(default=DEFAULT_DUE_MINUTES["low"])
    # At most one message per (kind, issue) in this window: a storm sends one message.
    notify_window_minutes = models.PositiveIntegerField(default=60)
    notify_emails = models.TextField(
        blank=True, help_text="Extra recipients, one per line (engineers are always notified)."
    )
    webhook_url = models.URLField(blank=True, help_text="Optional: JSON POST on each message.")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "issue settings"
        verbose_name_plural = "issue settings"

    def __str__(self) -> str:
        return "Issue settings"

    def due_delta(self, severity: str) -> timedelta:
        return timedelta(minutes=getattr(self, f"{severity}_due_minutes"))


class Issue(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=16, choices=Category.choices, db_index=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, db_index=True)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.WEB)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_issues",
    )
    fingerprint = models.CharField(max_length=64, db_index=True)
    exception_type = models.CharField(max_length=200, blank=True)
    # Links (all optional). ``dataset_name`` stays for reports that name a dataset
    # the registry does not hold; ``dataset_version`` is a registered version.
    study = models.ForeignKey(
        "clinical.Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dataset_name = models.CharField(max_length=200, blank=True)
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    model_version = models.ForeignKey(
        "models.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Context of the first occurrence (scrubbed): environment, configuration,
    # system_metrics, data_state, error_traces.
    context = models.JSONField(default=dict, blank=True)
    occurrence_count = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)
    # The response clock: starts at creation and restarts on every reopening.
    sla_started_at = models.DateTimeField()
    due_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    first_resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # What fixed it (scrubbed): written when the issue is resolved or closed, shown
    # beside similar new reports ("the fix is found once").
    resolution_note = models.TextField(blank=True)
    reopen_count = models.PositiveIntegerField(default=0)  # any reopening
    recurrence_count = models.PositiveIntegerField(default=0)  # reopened by a repeat
    overdue_notified_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from"
    )

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="issue_status_due"),
            models.Index(fields=["category", "status"], name="issue_category_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class Fingerprint(models.Model):
    """Which issue a fingerprint folds into. Merging re-points the source's rows."""

    value = models.CharField(max_length=64, unique=True)
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="fingerprints")

    def __str__(self) -> str:
        return self.value


class ReproductionStep(models.Model):
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["issue", "position"]
        constraints = [
            models.UniqueConstraint(fields=["issue", "position"], name="issue_step_position")
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.text[:40]}"


class Occurrence(models.Model):
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="occurrences")
    fingerprint = models.CharField(max_length=64)
    occurred_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.TextField(blank=True)
    exception_type = models.CharField(max_length=200, blank=True)
    traces = models.JSONField(default=list, blank=True)
    context = models.JSONField(default=dict, blank=True)
    host = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["issue", "-occurred_at"], name="occurrence_issue_time")]

    def __str__(self) -> str:
        return f"Occurrence {self.pk} of issue {self.issue_id}"


class IssueEvent(models.Model):
    """One line of the timeline (occurrences are interleaved from their own table)."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    from_value = models.CharField(max_length=100, blank=True)
    to_value = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["issue", "created_at"], name="issue_event_time")]

    def __str__(self) -> str:
        return f"{self.kind} on issue {self.issue_id}"


class Notification(models.Model):
    """A message sent about issues (the outbox and its history)."""

    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    key = models.CharField(max_length=100, db_index=True)
    issue = models.ForeignKey(
        Issue, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    subject = models.CharField(max_length=250)
    body = models.TextField()
    recipients = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.subject


class NotifyThrottle(models.Model):
    """The rate limit: one row per key, locked while deciding (race-free, sliding window)."""

    key = models.CharField(max_length=100, unique=True)
    last_sent_at = models.DateTimeField()
    suppressed = models.PositiveIntegerField(default=0)  # messages not sent since last_sent_at

    def __str__(self) -> str:
        return self.key


OPEN_Q = Q(status__in=["open", "triaged", "in_progress", "reopened"])
