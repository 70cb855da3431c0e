from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    """A registered set of MAHT-Net weights. At most one is active."""

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=50)
    # Relative to settings.MAHTQA_MODEL_DIR, or absolute.
    weights_path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    manifest = models.JSONField(default=dict, blank=True)
    # The registered dataset version it was trained on (from its manifest), when known.
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    registered_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=False)
    # A candidate in shadow mode runs beside the active version on live studies.
    in_shadow = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-registered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="model_version_unique"),
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="model_version_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class TrainingRun(models.Model):
    """One training run: parameters, environment, dataset version, metrics per step,
    findings of the convergence analysis, and the model version it produced."""

    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, default="running", db_index=True)
    source = models.CharField(max_length=8, default="client")
    params = models.JSONField(default=dict, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_metric_at = models.DateTimeField(null=True, blank=True)
    last_step = models.IntegerField(default=0)
    analyzed_at = models.DateTimeField(null=True, blank=True)
    analyzed_step = models.IntegerField(default=-1)
    early_stopping_step = models.IntegerField(null=True, blank=True)
    issue_id = models.IntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} {self.name}"


class RunMetric(models.Model):
    """One value of one metric at one step; a non-finite value is stored as null with
    ``finite`` False (NaN and inf are evidence of an explosion)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metrics")
    step = models.IntegerField()
    name = models.CharField(max_length=64)
    value = models.FloatField(null=True)
    finite = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "step"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name", "step"], name="run_metric_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.step}"


class RunFinding(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="findings")
    code = models.CharField(max_length=32)
    severity = models.CharField(max_length=8)
    start_step = models.IntegerField()
    end_step = models.IntegerField()
    statistic = models.CharField(max_length=200)
    value = models.FloatField(null=True)
    threshold = models.FloatField(null=True)
    message = models.CharField(max_length=500)
    recommendations = models.JSONField(default=list)

    class Meta:
        ordering = ["start_step", "id"]

    def __str__(self) -> str:
        return f"{self.code} {self.start_step}-{self.end_step}"


class EvaluationRun(models.Model):
    """A model version on a dataset version's split (a job on queue ``inference``)."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="evaluations"
    )
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.CASCADE, related_name="+"
    )
    split = models.CharField(max_length=10)
    status = models.CharField(max_length=8, default="queued", db_index=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict)
    cases = models.JSONField(default=list)  # per case: key, errors_mm (7), p4, risk, released
    error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"evaluation {self.pk} of {self.model_version_id}"


class ReleaseGate(models.Model):
    """The admin's release gates (one row). Activation is refused unless the candidate's
    evaluation on the reference split passes every gate that is set."""

    enabled = models.BooleanField(default=False)
    reference_dataset_version = models.ForeignKey(
        "datasets.DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reference_split = models.CharField(max_length=10, default="test")
    max_mre_mm = models.FloatField(null=True, blank=True)
    min_sdr2 = models.FloatField(null=True, blank=True)  # percent
    min_auroc = models.FloatField(null=True, blank=True)
    max_unsafe_rate = models.FloatField(null=True, blank=True)  # percent of released cases
    max_regression_mm = models.FloatField(null=True, blank=True)  # MRE worse than the active
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "release gate"
