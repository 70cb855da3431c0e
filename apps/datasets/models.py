"""The dataset registry: datasets, immutable versions (every file with its content
hash), images with their annotations, validation runs with per-image checks and
findings, model-found annotation suspects and data-loading profiles."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.datasets.choices import Layout, RunStatus, Severity, SourceKind, Split, SuspectStatus

USER = settings.AUTH_USER_MODEL


class Dataset(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(models.Model):
    """Immutable once registered: ``content_hash`` covers every file's sha256 and the
    annotations; a change to the data is a new version."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    layout = models.CharField(max_length=8, choices=Layout.choices)
    source_kind = models.CharField(max_length=8, choices=SourceKind.choices)
    root_path = models.CharField(max_length=1000)  # where the files are (server side)
    root_label = models.CharField(max_length=300)  # what people see: path under the root
    content_hash = models.CharField(max_length=64, db_index=True)
    schema = models.CharField(max_length=16, default="isbi19")
    annotators = models.JSONField(default=list)
    spacing_row_mm = models.FloatField(null=True, blank=True)  # default for the images
    spacing_col_mm = models.FloatField(null=True, blank=True)
    image_count = models.PositiveIntegerField(default=0)
    file_count = models.PositiveIntegerField(default=0)
    total_bytes = models.BigIntegerField(default=0)
    layout_problems = models.JSONField(default=list)  # found while reading the folder
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset__name", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    @property
    def label(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    @property
    def spacing(self) -> tuple[float, float] | None:
        if self.spacing_row_mm and self.spacing_col_mm:
            return (self.spacing_row_mm, self.spacing_col_mm)
        return None


class DatasetFile(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["version", "path"], name="dataset_file_unique")
        ]

    def __str__(self) -> str:
        return self.path


class DatasetImage(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="images")
    key = models.CharField(max_length=200)  # case id
    file = models.CharField(max_length=500)  # relative to the version's root
    fmt = models.CharField(max_length=8)
    sha256 = models.CharField(max_length=64, blank=True)  # empty: the file was missing
    split = models.CharField(max_length=10, choices=Split.choices)
    spacing_row_mm = models.FloatField(null=True, blank=True)
    spacing_col_mm = models.FloatField(null=True, blank=True)
    # annotator -> seven [x, y] (null where missing), in the image's pixels
    annotations = models.JSONField(default=dict)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="dataset_image_unique")
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def spacing(self) -> tuple[float, float] | None:
        if self.spacing_row_mm and self.spacing_col_mm:
            return (self.spacing_row_mm, self.spacing_col_mm)
        return None


class ValidationRun(models.Model):
    """One validation job: chunked, resumable (``cursor`` is the last image id done),
    with progress and an ETA; the summary is written at the end."""

    version = models.ForeignKey(
        DatasetVersion, on_delete=models.CASCADE, related_name="validation_runs"
    )
    status = models.CharField(
        max_length=8, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    options = models.JSONField(default=dict)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    summary = models.JSONField(default=dict)
    counts = models.JSONField(default=dict)  # severity -> findings
    error = models.CharField(max_length=500, blank=True)
    issue_id = models.IntegerField(null=True, blank=True)  # the issue critical findings filed into
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"validation {self.pk} of version {self.version_id}"


class ImageCheck(models.Model):
    """The per-image facts a run measured (the dataset-wide phase reads only these)."""

    run = models.ForeignKey(ValidationRun, on_delete=models.CASCADE, related_name="checks")
    image = models.ForeignKey(DatasetImage, on_delete=models.CASCADE, related_name="+")
    readable = models.BooleanField(default=False)
    sha256 = models.CharField(max_length=64, blank=True)
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)
    quality_score = models.FloatField(null=True)
    metrics = models.JSONField(default=dict)
    dhash = models.CharField(max_length=64, blank=True)
    distances = models.JSONField(default=dict)
    unit = models.CharField(max_length=2, default="mm")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "image"], name="image_check_unique")]

    def __str__(self) -> str:
        return f"check of image {self.image_id}"


class Finding(models.Model):
    run = models.ForeignKey(ValidationRun, on_delete=models.CASCADE, related_name="findings")
    image = models.ForeignKey(
        DatasetImage, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    code = models.CharField(max_length=48, db_index=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, db_index=True)
    landmark = models.CharField(max_length=40, blank=True)
    annotator = models.CharField(max_length=60, blank=True)
    message = models.CharField(max_length=500)
    details = models.JSONField(default=dict)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.severity} {self.code}"


class SuspectAnnotation(models.Model):
    """An annotation the model and the other annotator agree against (item 5)."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="suspects")
    image = models.ForeignKey(DatasetImage, on_delete=models.CASCADE, related_name="suspects")
    annotator = models.CharField(max_length=60)
    landmark = models.CharField(max_length=4)
    source = models.CharField(max_length=120)  # "oof:<file>" or "model:<name@version>"
    evidence = models.FloatField()
    distances = models.JSONField(default=dict)  # self_model, self_other, model_other (mm)
    points = models.JSONField(default=dict)  # self, other, model: [x, y]
    status = models.CharField(
        max_length=10, choices=SuspectStatus.choices, default=SuspectStatus.OPEN
    )
    note = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-evidence", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "image", "annotator", "landmark", "source"],
                name="suspect_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.annotator} {self.landmark} of image {self.image_id}"


class ProfileRun(models.Model):
    version = models.ForeignKey(
        DatasetVersion, on_delete=models.CASCADE, related_name="profile_runs"
    )
    status = models.CharField(max_length=8, choices=RunStatus.choices, default=RunStatus.QUEUED)
    options = models.JSONField(default=dict)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict)
    error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"profile {self.pk} of version {self.version_id}"
