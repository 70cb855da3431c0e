"""Reads for the model registry."""

from __future__ import annotations

from pathlib import Path

from django.db.models import QuerySet

from apps.models.files import sha256_file_cached, weights_path_resolve
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


def training_run_list():
    from apps.models.models import TrainingRun

    return TrainingRun.objects.select_related(
        "dataset_version__dataset", "model_version", "created_by"
    )


def training_run_get(*, pk: int):
    return training_run_list().filter(pk=pk).first()


def training_run_visible(*, run, user) -> bool:
    """Engineers and admins see every run; a script's token only the runs it made."""
    if user.has_perm("accounts.register_model") or user.has_perm("accounts.manage_models"):
        return True
    return run.created_by_id == user.pk


def run_finding_rows(*, run) -> list[dict]:
    """A run's findings as the API and ``run_diagnose --json`` give them."""
    return [
        {"code": f.code, "severity": f.severity, "start_step": f.start_step, "end_step": f.end_step,
         "statistic": f.statistic, "value": f.value, "threshold": f.threshold, "message": f.message,
         "recommendations": f.recommendations}
        for f in run.findings.all()
    ]  # fmt: skip


def run_series_after(*, run, after: int = -1, names: list[str] | None = None) -> dict[str, list]:
    """``{name: [[step, value or None], ...]}`` for steps > ``after`` (live charts)."""
    out: dict[str, list] = {}
    qs = run.metrics.filter(step__gt=after).order_by("name", "step")
    if names:
        qs = qs.filter(name__in=names)
    for name, step, value in qs.values_list("name", "step", "value").iterator(chunk_size=5000):
        out.setdefault(name, []).append([step, value])
    return out


def evaluation_list(*, model_version=None):
    from apps.models.models import EvaluationRun

    qs = EvaluationRun.objects.select_related("model_version", "dataset_version__dataset")
    return qs.filter(model_version=model_version) if model_version is not None else qs


def model_weights_path(*, weights_path: str | Path) -> Path:
    """Where a registered version's weights file lies (relative paths under the models
    root)."""
    return weights_path_resolve(weights_path)


def model_weights_sha256(path: Path) -> str:
    """SHA-256 of a weights file, cached by path, modification time and size."""
    return sha256_file_cached(path)
