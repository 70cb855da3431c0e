"""Validation runs: one job per run, in chunks. Each step checks the next chunk of
images (after ``cursor``) outside any transaction, then commits the checks, the
findings and the new cursor together, and enqueues the next step through the
outbox. A step that finds the cursor moved (another copy did the chunk) discards
its work, so a redelivered or duplicated step changes nothing. When no image is
left, the dataset-wide phase writes the summary and the run is done."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from apps.core.bulk import rows_insert
from apps.core.errors import InvalidInput
from apps.core.pools import process_pool
from apps.datasets.choices import ACTIVE_RUN_STATUSES, RunStatus
from apps.datasets.models import DatasetImage, DatasetVersion, Finding, ImageCheck, ValidationRun
from apps.outbox.services import outbox_enqueue
from mahtqa.datasets import checks
from mahtqa.datasets.layouts import ImageRecord
from mahtqa.datasets.summary import ImageRow, summarize

logger = logging.getLogger(__name__)
STEP_TASK = "apps.datasets.tasks.validation_run_step_task"


def record_of(image: DatasetImage) -> ImageRecord:
    """The framework-free record of a stored image."""
    anns = {
        a: np.array([[np.nan, np.nan] if p is None else p for p in pts], float)
        for a, pts in image.annotations.items()
    }
    return ImageRecord(
        key=image.key,
        file=image.file,
        fmt=image.fmt,
        annotations=anns,
        spacing_mm=image.spacing,
        split=image.split,
    )


def _enqueue_step(run: ValidationRun) -> None:
    outbox_enqueue(
        task=STEP_TASK,
        kwargs={"run_id": run.pk},
        dedupe_key=f"dataset-validate:{run.pk}:{run.cursor}",
    )


def validation_run_start(
    *, version: DatasetVersion, user: Any = None, consistency_mm: float = 2.0
) -> ValidationRun:
    """Queue a run; one active run per version (a second start returns it)."""
    if not 0.1 <= float(consistency_mm) <= 20:
        raise InvalidInput(
            "invalid_threshold",
            "The consistency threshold is 0.1-20 mm.",
            details={"field": "consistency_mm"},
        )
    with transaction.atomic():
        DatasetVersion.objects.select_for_update().get(pk=version.pk)
        active = version.validation_runs.filter(status__in=ACTIVE_RUN_STATUSES).first()
        if active is not None:
            return active
        run = ValidationRun.objects.create(
            version=version,
            options={"consistency_mm": float(consistency_mm)},
            total=version.image_count,
            created_by=user if getattr(user, "pk", None) else None,
        )
        _enqueue_step(run)
    return run


def _layout_findings(run: ValidationRun) -> list[Finding]:
    keys = dict(run.version.images.values_list("file", "id"))
    return [
        Finding(
            run=run,
            image_id=keys.get(p["file"]),
            code=p["code"],
            severity=p["severity"],
            landmark=p.get("landmark", ""),
            annotator=p.get("annotator", ""),
            message=f"{p['file']}: {p['message']}"[:500],
        )
        for p in run.version.layout_problems
    ]


def _check_all(
    images: list[DatasetImage], root: Path, threshold: float
) -> list[checks.ImageResult]:
    def one(image: DatasetImage) -> checks.ImageResult:
        return checks.check_image(
            record=record_of(image),
            root=root,
            expected_sha256=image.sha256,
            consistency_mm=threshold,
        )

    workers = max(1, settings.MAHTQA_DATASET_WORKERS)
    with checks.opencv_single_threaded():
        if workers == 1 or len(images) < 2:
            return [one(i) for i in images]
        # One pool per process: its threads keep their scratch buffers between steps
        # (mahtqa.datasets.quality.scratch). OpenCV and hashlib release the GIL.
        pool = process_pool(name="dataset-check", workers=workers)
        return list(pool.map(one, images))


_CHECK_FIELDS = ("run_id", "image_id", "readable", "sha256", "width", "height",
                 "quality_score", "metrics", "dhash", "distances", "unit")  # fmt: skip
_FINDING_FIELDS = ("run_id", "image_id", "code", "severity", "landmark", "annotator",
                   "message", "details")  # fmt: skip


def _rows(run: ValidationRun, images: list[DatasetImage], results: list[checks.ImageResult]):
    """The step's check and finding rows, as value tuples for ``rows_insert``."""
    checks_rows, findings = [], []
    for image, r in zip(images, results, strict=True):
        checks_rows.append(
            (run.pk, image.pk, r.readable, r.sha256, r.width, r.height, r.quality_score,
             r.metrics, r.dhash, r.distances, r.unit)
        )  # fmt: skip
        findings.extend(_finding_values(run.pk, f, image.pk) for f in r.findings)
    return checks_rows, findings


def _finding_values(run_id: int, f: checks.Finding, image_id: int | None) -> tuple:
    return (run_id, image_id, f.code, f.severity, f.landmark[:40], f.annotator[:60],
            f.message[:500], f.details)  # fmt: skip


def validation_run_step(*, run_id: int) -> str:
    """Check the next chunk; safe to run twice (see the module docstring)."""
    run = ValidationRun.objects.select_related("version").get(pk=run_id)
    if run.status not in ACTIVE_RUN_STATUSES:
        return run.status
    cursor = run.cursor
    images = list(
        run.version.images.filter(pk__gt=cursor).order_by("pk")[: settings.MAHTQA_DATASET_CHUNK]
    )
    if not images:
        return _finish(run_id=run.pk)
    results = _check_all(
        images, Path(run.version.root_path), run.options.get("consistency_mm", 2.0)
    )
    with transaction.atomic():
        locked = ValidationRun.objects.select_for_update().get(pk=run_id)
        if locked.cursor != cursor or locked.status not in ACTIVE_RUN_STATUSES:
            return "skipped"  # another copy of this step got here first
        now = timezone.now()
        if locked.status == RunStatus.QUEUED:
            locked.status, locked.started_at = RunStatus.RUNNING, now
            Finding.objects.bulk_create(_layout_findings(locked))
        checks_rows, findings = _rows(locked, images, results)
        rows_insert(model=ImageCheck, fields=_CHECK_FIELDS, rows=checks_rows)
        rows_insert(model=Finding, fields=_FINDING_FIELDS, rows=findings)
        locked.cursor, locked.done = images[-1].pk, locked.done + len(images)
        locked.heartbeat_at = now
        locked.save(update_fields=["status", "started_at", "cursor", "done", "heartbeat_at"])
        _enqueue_step(locked)
    return "step"


_ROW_COLUMNS = ("readable", "sha256", "dhash", "width", "height", "quality_score",
                "distances", "unit", "image__key", "image__split", "image__spacing_row_mm",
                "image__spacing_col_mm", "image__annotations")  # fmt: skip


def _image_rows(run: ValidationRun):
    """The light per-image rows of the dataset-wide phase, streamed as value tuples (a
    model instance per check and image cost half of this phase at 10,000 images)."""
    qs = ImageCheck.objects.filter(run_id=run.pk).order_by().values_list(*_ROW_COLUMNS)
    for (readable, sha256, dhash, width, height, quality_score, distances, unit, key, split,
         row_mm, col_mm, points) in qs.iterator(chunk_size=2000):  # fmt: skip
        yield ImageRow(
            key=key,
            split=split,
            readable=readable,
            sha256=sha256,
            dhash=dhash,
            width=width,
            height=height,
            spacing=(row_mm, col_mm) if row_mm and col_mm else None,
            quality_score=quality_score,
            distances=distances,
            unit=unit,
            positions=_positions(points, width, height),
        )


def _positions(annotations: dict, width: int | None, height: int | None):
    """The annotators' mean landmark positions as fractions of the image size, or None
    (no size, or no annotator with all seven points). Python floats: seven points."""
    if not width or not height:
        return None
    sets = [pts for pts in annotations.values() if all(p is not None for p in pts)]
    if not sets:
        return None
    n = len(sets)
    return [
        [sum(s[i][0] for s in sets) / n / width, sum(s[i][1] for s in sets) / n / height]
        for i in range(len(sets[0]))
    ]


def _finish(*, run_id: int) -> str:
    run = ValidationRun.objects.select_related("version").get(pk=run_id)
    summary, dataset_findings = summarize(
        rows=_image_rows(run), consistency_mm=run.options.get("consistency_mm", 2.0)
    )
    keys = dict(run.version.images.values_list("key", "id"))
    with transaction.atomic():
        locked = ValidationRun.objects.select_for_update().get(pk=run_id)
        if locked.status not in ACTIVE_RUN_STATUSES:
            return locked.status
        rows_insert(
            model=Finding,
            fields=_FINDING_FIELDS,
            rows=[_finding_values(locked.pk, f, keys.get(f.image)) for f in dataset_findings],
        )
        locked.counts = dict(locked.findings.values_list("severity").annotate(n=Count("id")))
        locked.summary = summary
        locked.status, locked.finished_at = RunStatus.DONE, timezone.now()
        locked.save(update_fields=["counts", "summary", "status", "finished_at"])
    _hand_off(run_id)  # after the commit: the run is done whatever the tracker says
    return "done"


def _hand_off(run_id: int) -> None:
    from apps.datasets.services.handoff import validation_run_file_issue

    try:
        validation_run_file_issue(run_id=run_id)
    except Exception:  # the run is done; a failed hand-off is logged, not lost data
        logger.exception("dataset validation %s: filing the issue failed", run_id)


def validation_run_fail(*, run_id: int, message: str) -> None:
    ValidationRun.objects.filter(pk=run_id, status__in=ACTIVE_RUN_STATUSES).update(
        status=RunStatus.FAILED, error=message[:500], finished_at=timezone.now()
    )


def validation_run_execute(*, run_id: int) -> ValidationRun:
    """Run every step in this process (the CLI without a worker, the demo seed)."""
    while validation_run_step(run_id=run_id) in ("step", "skipped"):
        pass
    return ValidationRun.objects.get(pk=run_id)


def validation_run_requeue_stale(*, now=None) -> int:
    """Beat: a running run whose heartbeat is older than the lease gets its next step
    enqueued again (the outbox dedupes per cursor, so at most one is live)."""
    now = now or timezone.now()
    stale = ValidationRun.objects.filter(
        status__in=ACTIVE_RUN_STATUSES,
        heartbeat_at__lt=now - timedelta(seconds=settings.MAHTQA_DATASET_LEASE_S),
    )
    n = 0
    for run in stale:
        with transaction.atomic():
            _enqueue_step(run)
        n += 1
    return n


def validation_run_progress(*, run: ValidationRun, now=None) -> dict[str, Any]:
    """Percent done and the ETA (seconds) from the pace so far."""
    now = now or timezone.now()
    total = max(run.total, 1)
    pct = 100.0 if run.status == RunStatus.DONE else min(99.0, 100.0 * run.done / total)
    eta = None
    if run.status == RunStatus.RUNNING and run.started_at and run.done:
        elapsed = (now - run.started_at).total_seconds()
        eta = max(0.0, elapsed / run.done * (run.total - run.done))
    return {"percent": round(pct, 1), "done": run.done, "total": run.total, "eta_s": eta}
