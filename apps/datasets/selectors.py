"""Reads for the dataset registry and its reports."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet

from apps.datasets.choices import SEVERITY_RANK
from apps.datasets.models import (
    Dataset,
    DatasetImage,
    DatasetVersion,
    Finding,
    ImageCheck,
    ProfileRun,
    SuspectAnnotation,
    ValidationRun,
)

FINDING_SORTS = {
    "severity": "-severity_rank",
    "code": "code",
    "image": "image__key",
    "landmark": "landmark",
}


def dataset_list() -> QuerySet[Dataset]:
    versions = DatasetVersion.objects.order_by("-number")
    return Dataset.objects.prefetch_related(Prefetch("versions", queryset=versions)).annotate(
        n_versions=Count("versions")
    )


def dataset_version_get(*, pk: int) -> DatasetVersion | None:
    return (
        DatasetVersion.objects.select_related("dataset", "parent", "created_by")
        .filter(pk=pk)
        .first()
    )


def dataset_version_find(*, ref: str) -> DatasetVersion | None:
    """A version by id ("12") or "name@number" / "name@vN"; None when there is none."""
    ref = (ref or "").strip()
    if ref.isdigit():
        return dataset_version_get(pk=int(ref))
    name, _, number = ref.rpartition("@")
    number = number.lstrip("v")
    if name and number.isdigit():
        return DatasetVersion.objects.filter(dataset__name=name, number=int(number)).first()
    return None


def validation_run_latest(*, version: DatasetVersion) -> ValidationRun | None:
    return version.validation_runs.first()


def validation_run_get(*, pk: int) -> ValidationRun | None:
    return ValidationRun.objects.select_related("version__dataset").filter(pk=pk).first()


@dataclass(frozen=True)
class FindingFilters:
    severity: str = ""
    code: str = ""
    landmark: str = ""
    image: str = ""
    sort: str = "severity"


def finding_list(
    *, run: ValidationRun, filters: FindingFilters = FindingFilters()
) -> QuerySet[Finding]:
    from django.db.models import Case, IntegerField, Value, When

    qs = run.findings.select_related("image").annotate(
        severity_rank=Case(
            *[When(severity=s, then=Value(r)) for s, r in SEVERITY_RANK.items()],
            output_field=IntegerField(),
        )
    )
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.code:
        qs = qs.filter(code=filters.code)
    if filters.landmark:
        qs = qs.filter(Q(landmark=filters.landmark) | Q(landmark__contains=filters.landmark + ","))
    if filters.image:
        qs = qs.filter(image__key=filters.image)
    order = FINDING_SORTS.get(filters.sort.lstrip("-"), "-severity_rank")
    if filters.sort.startswith("-"):
        order = order[1:] if order.startswith("-") else "-" + order
    return qs.order_by(order, "id")


def finding_codes(*, run: ValidationRun) -> list[tuple[str, int]]:
    return list(run.findings.values_list("code").annotate(n=Count("id")).order_by("-n", "code"))


def image_get(*, version: DatasetVersion, key: str) -> DatasetImage | None:
    return version.images.filter(key=key).first()


def image_check_get(*, run: ValidationRun | None, image: DatasetImage) -> ImageCheck | None:
    return run.checks.filter(image=image).first() if run else None


def image_findings(*, run: ValidationRun | None, image: DatasetImage) -> QuerySet[Finding]:
    if run is None:
        return Finding.objects.none()
    return run.findings.filter(image=image).order_by("id")


def suspect_list(*, version: DatasetVersion, status: str = "") -> QuerySet[SuspectAnnotation]:
    qs = version.suspects.select_related("image", "decided_by")
    return qs.filter(status=status) if status else qs


def profile_run_latest(*, version: DatasetVersion) -> ProfileRun | None:
    return version.profile_runs.first()


def profile_run_get(*, pk: int) -> ProfileRun | None:
    return ProfileRun.objects.select_related("version__dataset").filter(pk=pk).first()


def dataset_version_trained_on(*, info: object) -> DatasetVersion | None:
    """The version an engine manifest's ``data.dataset_version`` names: the id and the
    content hash must both match (a re-created database cannot mislink)."""
    if not isinstance(info, dict) or not str(info.get("id", "")).isdigit():
        return None
    return DatasetVersion.objects.filter(
        pk=int(info["id"]), content_hash=info.get("content_hash", "")
    ).first()


@dataclass(frozen=True)
class EvalCase:
    key: str
    path: str
    fmt: str
    spacing: tuple[float, float] | None
    truth: object  # (7, 2) mean of the annotators, in the image's pixels


def dataset_split_cases(*, version: DatasetVersion, split: str) -> list[EvalCase]:
    """The annotated images of a split (``all``: every split), truth = the mean of the
    annotators (the usual ground truth), for evaluation runs."""
    import numpy as np

    qs = version.images.exclude(sha256="").order_by("key")
    if split != "all":
        qs = qs.filter(split=split)
    out = []
    root = version.root_path
    for image in qs.iterator(chunk_size=2000):
        sets = [
            pts for pts in image.annotations.values() if pts and all(p is not None for p in pts)
        ]
        if not sets:
            continue
        truth = np.mean(np.asarray(sets, float), axis=0)
        out.append(EvalCase(key=image.key, path=f"{root}/{image.file}", fmt=image.fmt,
                            spacing=image.spacing, truth=truth))  # fmt: skip
    return out
