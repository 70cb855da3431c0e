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
