"""Importing existing training logs (TensorBoard event files, CSV logs such as
Lightning's ``metrics.csv``), uploaded or from a path under the admin-configured roots
(``MAHTQA_DATASET_ROOTS``), as a finished training run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import InvalidInput, PayloadTooLarge
from apps.models.models import TrainingRun
from apps.models.services.runs import run_create, run_log_metrics
from mahtqa.datasets.safe_io import UnsafeInput, resolve_entry_under_roots
from mahtqa.engine.runlogs import LogError, read_log

MAX_UPLOAD = 256 * 1024 * 1024
CHUNK = 2000


def _path(path: str) -> Path:
    try:
        return resolve_entry_under_roots(path, roots=settings.MAHTQA_DATASET_ROOTS, folders=True)
    except UnsafeInput as exc:
        raise InvalidInput(exc.code, exc.message, details={"field": "path"}) from None


def run_import(
    *,
    name: str,
    user: Any = None,
    format: str = "",
    file: Any = None,
    path: str = "",
    dataset_version: Any = None,
) -> TrainingRun:
    """A finished run from a log; ``file`` (an upload) or ``path``. The diagnosis runs."""
    if bool(file) == bool(path):
        raise InvalidInput(
            "path_or_file", "Send either 'path' (under a configured root) or 'file'."
        )
    with tempfile.TemporaryDirectory() as tmp:
        if file is not None:
            if getattr(file, "size", 0) > MAX_UPLOAD:
                raise PayloadTooLarge("log_too_large", "The log is larger than 256 MiB.")
            filename = Path(getattr(file, "name", "log")).name or "log"
            source = Path(tmp) / filename
            with source.open("wb") as out:
                for chunk in file.chunks() if hasattr(file, "chunks") else [file.read()]:
                    out.write(chunk)
        else:
            source = _path(path)
        try:
            rows = read_log(source, fmt=format)
        except LogError as exc:
            raise InvalidInput(exc.code, exc.message) from None
    if not rows:
        raise InvalidInput("log_empty", "The log holds no scalar metric.")
    with transaction.atomic():
        run = run_create(
            name=name,
            user=user,
            dataset_version=dataset_version,
            source="import",
            params={"imported_from": Path(path).name if path else getattr(file, "name", "")},
        )
        for i in range(0, len(rows), CHUNK):
            run_log_metrics(run=run, rows=rows[i : i + CHUNK], diagnose=False)  # once, below
        TrainingRun.objects.filter(pk=run.pk).update(status="finished", finished_at=timezone.now())
    from apps.models.services.runs import run_diagnose

    return run_diagnose(run_id=run.pk)
