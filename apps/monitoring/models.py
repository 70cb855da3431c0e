from django.conf import settings
from django.db import models

from apps.monitoring.choices import (
    IncidentEventKind,
    IncidentSeverity,
    IncidentStatus,
    Rag,
    Trigger,
)


class Heartbeat(models.Model):
    """Last time a worker ran the ping task for ``source`` (beat, a test, ...)."""

    source = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=255, blank=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.source} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


class ReadinessCheck(models.Model):
    """One recorded readiness run (beat every minute, and each /readyz call): uptime data."""

    checked_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=20)  # "beat" or "readyz"
    ok = models.BooleanField()
    results = models.JSONField(default=dict)  # {check: {status, latency_ms, error?}}

    class Meta:
        ordering = ["-checked_at"]

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'fail'} @ {self.checked_at:%Y-%m-%d %H:%M:%S}"


class WorkerEnvironment(models.Model):
    """The latest environment verification a worker reported for one queue (heartbeat task).

    ``checks`` holds every check: ``{code, status (green/amber/red), message, fix, value}``.
    """

    hostname = models.CharField(max_length=255)
    queue = models.CharField(max_length=50)
    reported_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=5, choices=Rag.choices)
    facts = models.JSONField(default=dict)  # python, torch, cuda, gpu, ram, disk, model ...
    checks = models.JSONField(default=list)

    class Meta:
        ordering = ["hostname", "queue"]
        constraints = [
            models.UniqueConstraint(fields=["hostname", "queue"], name="uniq_worker_env_queue")
        ]

    def __str__(self) -> str:
        return f"{self.hostname} [{self.queue}] {self.status}"


class HealthRun(models.Model):
    """One run of the proactive health checks (beat, or ``health_run``); history kept."""

    ran_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=5, choices=Rag.choices)
    source = models.CharField(max_length=20, default="beat")

    class Meta:
        ordering = ["-ran_at"]

    def __str__(self) -> str:
        return f"health {self.status} @ {self.ran_at:%Y-%m-%d %H:%M}"


class HealthResult(models.Model):
    """One check of a health run: its state, figures and the maintenance recommendation."""

    run = models.ForeignKey(HealthRun, on_delete=models.CASCADE, related_name="results")
    code = models.CharField(max_length=50)
    status = models.CharField(max_length=5, choices=Rag.choices)
    message = models.CharField(max_length=500)
    recommendation = models.CharField(max_length=500, blank=True)
    value = models.FloatField(null=True, blank=True)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["run", "code"]
        indexes = [models.Index(fields=["code", "run"])]

    def __str__(self) -> str:
        return f"{self.code}: {self.status}"


class MonitorSettings(models.Model):
    """Admin-set thresholds of the clinical monitor and the incident response (one row)."""

    # Clinical performance: a safety alert when a window of reviewed cases crosses these.
    window_cases = models.PositiveIntegerField(default=50)
    max_mre_mm = models.FloatField(default=2.0)
    max_correction_rate = models.FloatField(default=0.4)
    max_rejection_rate = models.FloatField(default=0.15)
    max_ood_rate = models.FloatField(default=0.5)
    drift_alpha = models.FloatField(default=0.001)  # false-alarm level of a drift test
    # Response plan.
    auto_review_all_on_safety = models.BooleanField(default=False)
    ack_timeout_minutes = models.FloatField(default=15.0)  # unacknowledged: next level
    # On-call order; empty = the review escalation chain of the routing policy.
    oncall_levels = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "monitor settings"


class Incident(models.Model):
    """An incident (the guide's EmergencyResponseSystem): opened by a trigger or by hand.

    A repeated trigger with the same ``fingerprint`` folds into the active incident.
    """

    trigger = models.CharField(max_length=20, choices=Trigger.choices, db_index=True)
    fingerprint = models.CharField(max_length=120, db_index=True)
    severity = models.CharField(max_length=4, choices=IncidentSeverity.choices)
    status = models.CharField(
        max_length=12, choices=IncidentStatus.choices, default=IncidentStatus.OPEN, db_index=True
    )
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField(db_index=True)
    last_seen_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)  # username or "link:<level>"
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Notification cascade: index into the on-call levels; the next step is due at.
    oncall_step = models.PositiveSmallIntegerField(default=0)
    escalate_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Post-incident record.
    cause = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    actions_taken = models.TextField(blank=True)
    follow_up = models.TextField(blank=True)
    issues = models.ManyToManyField("issues.Issue", blank=True, related_name="incidents")
    studies = models.ManyToManyField("clinical.Study", blank=True, related_name="incidents")

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # At most one active incident per fingerprint: repeats fold into it.
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=models.Q(status__in=["open", "acknowledged", "mitigated"]),
                name="uniq_active_incident_fingerprint",
            )
        ]

    def __str__(self) -> str:
        return f"INC-{self.pk} {self.title}"


class IncidentEvent(models.Model):
    """The incident's timeline: every trigger, action, notification and change."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=12, choices=IncidentEventKind.choices)
    actor = models.CharField(max_length=150, blank=True)  # username, "system" or "link:..."
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class IncidentNotification(models.Model):
    """One message of the cascade to one on-call level (delivered through the outbox)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notifications")
    step = models.PositiveSmallIntegerField()
    level = models.CharField(max_length=30)
    recipients = models.JSONField(default=list)  # e-mail addresses (never shown to engineers)
    webhook = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)  # every channel delivered
    # Per channel, so a retry repeats only the channel that failed.
    email_sent_at = models.DateTimeField(null=True, blank=True)
    webhook_sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["incident", "step"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "step"], name="uniq_incident_step")
        ]

    def __str__(self) -> str:
        return f"INC-{self.incident_id} step {self.step} ({self.level})"
