"""Studies, predictions, review tasks and the versioned routing policy."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.clinical.choices import (
    AuditAction,
    CaseEventKind,
    EscalationLevel,
    Priority,
    ReviewOutcome,
    ReviewPolicy,
    SpacingSource,
    StudyStatus,
    TaskStatus,
)


class Site(models.Model):
    """A hospital and device, known only by a keyed digest of its header fields
    (``mahtqa.imaging.site``); ``default`` for headers without them. Never deleted:
    intake caches key -> id per process (studies PROTECT their site)."""

    key = models.CharField(max_length=32, unique=True)
    device = models.CharField(max_length=128, blank=True)  # manufacturer and model only
    review_all = models.BooleanField(default=False)  # every case to review until onboarded
    # the accepted site calibration (threshold, n, bound...); null: the global one applies
    policy = models.JSONField(null=True, blank=True)
    proposal = models.JSONField(null=True, blank=True)  # the latest site_calibrate result
    onboarded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.key} ({self.device})"


class Study(models.Model):
    """One submitted DICOM instance and the state of its processing (the job's truth)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="studies"
    )
    # Identifiers of the original (PHI-bearing) instance: shown to its owner and clinicians only.
    sop_instance_uid = models.CharField(max_length=64)
    study_instance_uid = models.CharField(max_length=64)
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="studies"
    )
    # De-identified counterparts: what engineers, logs and datasets see.
    deid_sop_instance_uid = models.CharField(max_length=64)
    deid_study_instance_uid = models.CharField(max_length=64)
    patient_pseudonym = models.CharField(max_length=32, db_index=True)
    original_file = models.CharField(max_length=255)  # name in the "phi" storage
    deid_file = models.CharField(max_length=255)  # name in the default storage
    # When original_pixels_at is set, the "phi" file is the original without its
    # pixel data element, which lies byte for byte in the de-identified copy at
    # deid_pixels_at (pixels_length bytes): the pixels are stored once, and the
    # original is rebuilt and checked against file_sha256 (study_original_bytes).
    original_pixels_at = models.PositiveBigIntegerField(null=True, blank=True)
    deid_pixels_at = models.PositiveBigIntegerField(null=True, blank=True)
    pixels_length = models.PositiveBigIntegerField(null=True, blank=True)
    file_sha256 = models.CharField(max_length=64)
    file_size = models.PositiveBigIntegerField()
    modality = models.CharField(max_length=16)
    rows = models.PositiveIntegerField()
    cols = models.PositiveIntegerField()
    transfer_syntax_uid = models.CharField(max_length=64)
    spacing_row_mm = models.FloatField(null=True, blank=True)
    spacing_col_mm = models.FloatField(null=True, blank=True)
    spacing_source = models.CharField(max_length=32, choices=SpacingSource.choices)
    status = models.CharField(
        max_length=16, choices=StudyStatus.choices, default=StudyStatus.QUEUED, db_index=True
    )
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # "hostname:main-pid" of the worker processing it: a study held by a worker that
    # stopped beating is taken over (study_requeue_stuck).
    worker = models.CharField(max_length=200, blank=True, default="", db_default="")
    received_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    receive_ms = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["submitted_by", "sop_instance_uid"], name="study_unique_per_client"
            ),
        ]
        indexes = [models.Index(fields=["status", "enqueued_at"], name="study_status_enqueued")]

    def __str__(self) -> str:
        return f"Study {self.public_id}"

    @property
    def spacing_mm(self) -> tuple[float, float] | None:
        if self.spacing_row_mm and self.spacing_col_mm:
            return (self.spacing_row_mm, self.spacing_col_mm)
        return None


class Prediction(models.Model):
    """What one model version found on one study. Re-running replaces it (unique pair)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(
        "models.ModelVersion", on_delete=models.PROTECT, related_name="predictions"
    )
    landmarks = models.JSONField()  # [{name, abbreviation, x, y, x_mm, y_mm, confidence}]
    measurements = models.JSONField()  # {code: {value, unit, norm_mean, norm_sd}}
    findings = models.JSONField()  # [{code, severity, message, landmarks}]
    ood_score = models.FloatField()
    ood_details = models.JSONField(default=dict)
    # v2 engines: P(any landmark > 4 mm) and per landmark P(> 2 / > 4 mm) and signals
    case_risk = models.FloatField(null=True, blank=True)
    risk_details = models.JSONField(default=dict, blank=True)
    routing = models.JSONField(default=dict)  # destination, priority, reasons, policy version
    timings_ms = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "model_version"], name="prediction_one_per_model"
            )
        ]

    def __str__(self) -> str:
        return f"Prediction {self.pk} of study {self.study_id}"


class RoutingPolicy(models.Model):
    """Admin thresholds, versioned: every change is a new row; the newest is in force."""

    version = models.PositiveIntegerField(unique=True)
    min_confidence = models.FloatField(default=0.5)
    min_confidence_per_landmark = models.JSONField(default=dict, blank=True)  # {"A": 0.4}
    max_ood_score = models.FloatField(default=1.0)
    review_policy = models.CharField(
        max_length=20, choices=ReviewPolicy.choices, default=ReviewPolicy.EXCEPTIONS_ONLY
    )
    urgent_severities = models.JSONField(default=list)  # finding severities that make a case urgent
    plausibility = models.JSONField(default=dict, blank=True)  # PlausibilityConfig.as_dict()
    sla_minutes = models.JSONField(default=dict)  # {"urgent": 60, "normal": 1440}
    # e.g. ["radiologist", "senior_radiologist", "admin"]
    escalation_chain = models.JSONField(default=list)
    allowed_modalities = models.JSONField(default=list)  # DICOM Modality values accepted at intake
    # "risk_controlled": release thresholds derived from out-of-fold data for the tolerated
    # risk (engines with an error model); "raw_thresholds": the per-landmark limits above.
    routing_mode = models.CharField(max_length=20, default="risk_controlled")
    tolerated_risk = models.FloatField(default=0.05)  # max share of unsafe releases
    new_sites_review_all = models.BooleanField(default=False)  # new sites: review all
    # {"emails": {level: [address]}, "webhook_url": str}; null = inherited from the last
    # version that set it (versions written by routing_policy_update alone leave it null).
    notifications = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"Routing policy v{self.version}"


class ReviewTask(models.Model):
    """A case waiting for (or worked by) a radiologist."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="review_task")
    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="+")
    priority = models.CharField(max_length=8, choices=Priority.choices, db_index=True)
    status = models.CharField(
        max_length=8, choices=TaskStatus.choices, default=TaskStatus.OPEN, db_index=True
    )
    level = models.CharField(
        max_length=20, choices=EscalationLevel.choices, default=EscalationLevel.RADIOLOGIST
    )
    reasons = models.JSONField(default=list)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    touched_at = models.DateTimeField(null=True, blank=True)  # claimant's last activity
    due_at = models.DateTimeField()
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["level", "priority", "created_at"],
                name="task_open_queue",
                condition=Q(status="open"),
            ),
            # "Next case": urgent first, then oldest, in one index scan.
            # The queue page (open + claimed) and "next case" (open): urgent first, then
            # oldest, read in index order with no sort of the whole queue.
            models.Index(
                fields=["level", "-priority", "created_at", "id"],
                name="task_queue_order",
                condition=Q(status__in=["open", "claimed"]),
            ),
            models.Index(
                fields=["claimed_by", "status"],
                name="task_claimed_by",
                condition=Q(status="claimed"),
            ),
            models.Index(fields=["status", "due_at"], name="task_status_due"),
        ]

    def __str__(self) -> str:
        return f"{self.priority} review of study {self.study_id}"


class Review(models.Model):
    """A radiologist's decision on a case; the study's API result carries it."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reviews")
    prediction = models.ForeignKey(Prediction, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    outcome = models.CharField(max_length=12, choices=ReviewOutcome.choices)
    landmarks_before = models.JSONField()
    landmarks_after = models.JSONField(default=list)
    reason = models.CharField(max_length=500, blank=True)
    time_spent_s = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.outcome} review {self.pk}"


class CaseEvent(models.Model):
    """One step in a case's timeline (claims, escalations, notifications, the decision)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=CaseEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    level = models.CharField(max_length=20, blank=True)  # level after the step
    message = models.CharField(max_length=500, blank=True)  # never PHI
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on study {self.study_id}"


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit trail is append-only.")

    def delete(self):
        raise PermissionError("The audit trail is append-only.")


class AuditEvent(models.Model):
    """Append-only audit trail: who, when, what, from where. PostgreSQL also refuses
    UPDATE and DELETE on the table with a trigger (migration 0002)."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_username = models.CharField(max_length=150)
    action = models.CharField(max_length=24, choices=AuditAction.choices, db_index=True)
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=64, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict)  # never PHI
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor_username} {self.action} {self.target_type}:{self.target_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The audit trail is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit trail is append-only.")


class PhiDigest(models.Model):
    """One identifier the system holds, as a keyed hash (HMAC-SHA256): no PHI in the row.

    Fed at intake from the original instance's identifying attributes (names,
    IDs, birth and study dates, accession numbers, original UIDs); consulted
    by every PHI scrubber on the server (see ``mahtqa.phi``).
    """

    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"PhiDigest {self.digest[:8]}"


class ShadowPrediction(models.Model):
    """What a candidate model in shadow mode found on a live study: never released, never
    shown to clinicians as the result; only the comparison page reads it."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="shadow_predictions")
    model_version = models.ForeignKey(
        "models.ModelVersion", on_delete=models.CASCADE, related_name="shadow_predictions"
    )
    landmarks = models.JSONField()
    ood_score = models.FloatField()
    case_risk = models.FloatField(null=True, blank=True)
    routing = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["study", "model_version"], name="shadow_one_per_model")
        ]

    def __str__(self) -> str:
        return f"Shadow prediction {self.pk} of study {self.study_id}"
