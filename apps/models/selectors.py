"""Reads for the model registry."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.models.models import ModelVersion


def model_version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related(
        "registered_by", "activated_by", "dataset_version__dataset"
    ).all()


def model_version_previous(*, exclude: ModelVersion | None) -> ModelVersion | None:
    """The most recently activated version other than ``exclude``."""
    qs = ModelVersion.objects.filter(activated_at__isnull=False)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs.order_by("-activated_at").first()


def model_version_find(*, ref: str) -> ModelVersion | None:
    """A version by id (``"12"``) or ``"name@version"``; None when there is none.

    Raises ValueError when ``ref`` is neither form."""
    if ref.isdigit():
        return ModelVersion.objects.filter(pk=int(ref)).first()
    if "@" in ref:
        name, version = ref.split("@", 1)
        return ModelVersion.objects.filter(name=name, version=version).first()
    raise ValueError(ref)


def model_version_get(*, pk: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(pk=pk).first()


def model_version_shadow_list() -> list[ModelVersion]:
    """Candidates running in shadow mode beside the active version."""
    return list(ModelVersion.objects.filter(in_shadow=True, is_active=False))
