"""Data-loading profiles of a dataset version: a job on queue ``checks`` that times
the engine's real DataLoader pipeline (see ``mahtqa.datasets.profiler``)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.errors import InvalidInput
from apps.datasets.choices import ACTIVE_RUN_STATUSES, RunStatus
from apps.datasets.models import DatasetVersion, ProfileRun
from apps.outbox.services import outbox_enqueue

TASK = "apps.datasets.tasks.profile_run_execute_task"
MAX_IMAGES = 200


def _ints(values: Any, field: str, lo: int, hi: int) -> list[int]:
    try:
        out = sorted({int(v) for v in values})
    except (TypeError, ValueError):
        out = []
    if not out or len(out) > 5 or not all(lo <= v <= hi for v in out):
        raise InvalidInput(
            "invalid_option",
            f"{field}: 1-5 whole numbers from {lo} to {hi}.",
            details={"field": field},
        )
    return out


def profile_run_start(
    *,
    version: DatasetVersion,
    user: Any = None,
    batch_sizes: Any = (1, 4, 8),
    num_workers: Any = (0, 1, 2),
    batches: int = 5,
) -> ProfileRun:
    """Queue a profile (one active per version: a second start returns it)."""
    if version.layout == "dicom":
        raise InvalidInput(
            "profile_unsupported", "The profiler times PNG/JPEG pipelines; this version is DICOM."
        )
    options = {
        "batch_sizes": _ints(batch_sizes, "batch_sizes", 1, 64),
        "num_workers": _ints(num_workers, "num_workers", 0, 8),
        "batches": _ints([batches], "batches", 1, 50)[0],
    }
    with transaction.atomic():
        DatasetVersion.objects.select_for_update().get(pk=version.pk)
        active = version.profile_runs.filter(status__in=ACTIVE_RUN_STATUSES).first()
        if active is not None:
            return active
        run = ProfileRun.objects.create(
            version=version,
            options=options,
            created_by=user if getattr(user, "pk", None) else None,
            total=1 + len(options["batch_sizes"]) * len(options["num_workers"]),
        )
        outbox_enqueue(
            task=TASK,
            kwargs={"run_id": run.pk},
            dedupe_key=f"dataset-profile:{run.pk}",
            new_key=True,
        )
    return run


def _spec(run: ProfileRun) -> dict[str, Any]:
    """The images to time: those the latest finished validation read (all when none)."""
    root = Path(run.version.root_path)
    images = run.version.images.exclude(sha256="")
    checked = run.version.validation_runs.filter(status=RunStatus.DONE).first()
    if checked is not None:
        images = images.filter(pk__in=checked.checks.filter(readable=True).values("image_id"))
    items = []
    for image in images.order_by("pk")[:MAX_IMAGES]:
        pts = next(iter(image.annotations.values()), None)
        points = [[0.0, 0.0] if p is None else p for p in pts] if pts else None
        items.append({"path": str(root / image.file), "points": points})
    return {"items": items, "options": run.options}


def profile_run_execute(*, run_id: int) -> ProfileRun:
    """Run the profile in a child process (DataLoader workers need a non-daemonic
    parent); safe to run twice (a finished run is left as it is)."""
    with transaction.atomic():
        run = ProfileRun.objects.select_for_update().select_related("version").get(pk=run_id)
        if run.status not in ACTIVE_RUN_STATUSES:
            return run
        ProfileRun.objects.filter(pk=run_id).update(status=RunStatus.RUNNING)
    report, error = None, "the profiler stopped without a report"
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps(_spec(run)))
        proc = subprocess.Popen(  # noqa: S603 - our own module, arguments from the server
            [sys.executable, "-m", "mahtqa.datasets.profile_cli", str(spec)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            kind, _, rest = line.strip().partition(" ")
            if kind == "progress":
                done, total = (int(v) for v in rest.split())
                ProfileRun.objects.filter(pk=run_id).update(done=done, total=total)
            elif kind == "report":
                report = json.loads(rest)
            elif kind == "error":
                error = rest
        proc.wait()
    now = timezone.now()
    if report is None:
        ProfileRun.objects.filter(pk=run_id).update(
            status=RunStatus.FAILED, error=error[:500], finished_at=now
        )
    else:
        ProfileRun.objects.filter(pk=run_id).update(
            status=RunStatus.DONE, report=report, finished_at=now
        )
    return ProfileRun.objects.get(pk=run_id)
