"""Training runs: create, log metrics (batched, idempotent per step), finish (and
register the weights it produced), diagnose with the ConvergenceAnalyzer (throttled
while the run goes on, and at the end), file critical findings as issues."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, InvalidInput
from apps.models.choices import RunStatus
from apps.models.models import ModelVersion, RunFinding, RunMetric, TrainingRun
from apps.outbox.services import outbox_enqueue

DIAGNOSE_TASK = "apps.models.tasks.run_diagnose_task"
MAX_ROWS = 5000
NAME_MAX = 64
NON_FINITE = ("nan", "inf", "-inf", "infinity", "-infinity")


def _dataset_version(ref: Any):
    from apps.datasets.selectors import dataset_version_find

    if ref in (None, ""):
        return None
    found = dataset_version_find(ref=str(ref))
    if found is None:
        raise InvalidInput(
            "unknown_dataset_version",
            "No such dataset version.",
            details={"field": "dataset_version"},
        )
    return found


def run_create(
    *,
    name: str,
    params: dict | None = None,
    environment: dict | None = None,
    dataset_version: Any = None,
    user: Any = None,
    source: str = "client",
) -> TrainingRun:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput(
            "invalid_name", "A run name of 1-200 characters is required.", details={"field": "name"}
        )
    return TrainingRun.objects.create(
        name=name,
        params=dict(params or {}),
        environment=dict(environment or {}),
        source=source,
        dataset_version=_dataset_version(dataset_version),
        created_by=user if getattr(user, "pk", None) else None,
    )


def _rows(run: TrainingRun, rows: list[dict[str, Any]]) -> list[RunMetric]:
    out = []
    for row in rows:
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("step"), int)
            or isinstance(row.get("step"), bool)
        ):
            raise InvalidInput(
                "invalid_metrics", "Each row is {'step': int, '<name>': number, ...}."
            )
        for key, value in row.items():
            if key == "step":
                continue
            if not isinstance(key, str) or not key or len(key) > NAME_MAX:
                raise InvalidInput("invalid_metrics", f"Metric names are 1-{NAME_MAX} characters.")
            if isinstance(value, str) and value.lower() in NON_FINITE:
                value = float(value)  # JSON carries NaN / inf as these strings
            if value is None or isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(
                    "invalid_metrics", f"{key} at step {row['step']} is not a number."
                )
            finite = math.isfinite(value)
            out.append(
                RunMetric(
                    run=run,
                    step=row["step"],
                    name=key,
                    value=float(value) if finite else None,
                    finite=finite,
                )
            )
    return out


def run_log_metrics(
    *, run: TrainingRun, rows: list[dict[str, Any]], now=None, diagnose: bool = True
) -> int:
    """Store a batch of rows ``{"step": n, "train_loss": x, ...}``. A row sent twice
    (a client retry) is stored once. Enqueues a throttled diagnosis."""
    if run.status != RunStatus.RUNNING:
        raise Conflict("run_finished", f"The run is {run.status}; metrics are closed.")
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        raise InvalidInput("invalid_metrics", f"Send a list of at most {MAX_ROWS} rows.")
    metrics = _rows(run, rows)
    now = now or timezone.now()
    with transaction.atomic():
        RunMetric.objects.bulk_create(metrics, ignore_conflicts=True, batch_size=2000)
        last = max((m.step for m in metrics), default=run.last_step)
        TrainingRun.objects.filter(pk=run.pk).update(
            last_metric_at=now, last_step=max(last, run.last_step)
        )
        if diagnose and _diagnosis_due(run, last, now):
            outbox_enqueue(
                task=DIAGNOSE_TASK, kwargs={"run_id": run.pk}, dedupe_key=f"run-diagnose:{run.pk}"
            )
    return len(metrics)


def _diagnosis_due(run: TrainingRun, last_step: int, now) -> bool:
    every = timedelta(seconds=settings.MAHTQA_RUN_DIAGNOSE_EVERY_S)
    return (
        run.analyzed_at is None
        or now - run.analyzed_at >= every
        or last_step - run.analyzed_step >= 500
    )


def run_series(*, run: TrainingRun) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for name, step, value in (
        run.metrics.order_by("name", "step")
        .values_list("name", "step", "value")
        .iterator(chunk_size=5000)
    ):
        series[name].append((step, float("nan") if value is None else value))
    return dict(series)


def series_groups(*, series: dict[str, list]) -> dict[str, dict[str, list]]:
    """The plain series (key "") and each "<group>/" prefix's series with the prefix
    removed: one history per network of a run that trains several (train_bundled.sh's
    "fine/train_loss" beside the coarse network's "train_loss")."""
    groups: dict[str, dict[str, list]] = {"": {}}
    for name, values in series.items():
        group, _, rest = name.rpartition("/") if "/" in name else ("", "", name)
        groups.setdefault(group, {})[rest] = values
    return groups


def run_diagnose(*, run_id: int) -> TrainingRun:
    """Run the ConvergenceAnalyzer over the whole history and replace the findings.
    Safe to run twice. A critical finding files (or folds into) an issue."""
    from mahtqa.engine.convergence import analyze_history

    run = TrainingRun.objects.get(pk=run_id)
    series = run_series(run=run)
    rows, stop = [], None
    for group, part in series_groups(series=series).items():
        analysed = analyze_history(series=part)
        stop = analysed.early_stopping_step if group == "" else stop  # the plain series'
        tag = f"[{group}] " if group else ""
        rows += [
            RunFinding(
                run=run,
                code=f.code,
                severity=f.severity,
                start_step=f.start_step,
                end_step=f.end_step,
                statistic=(tag + f.statistic)[:200],
                value=_finite(f.value),
                threshold=_finite(f.threshold),
                message=(tag + f.message)[:500],
                recommendations=list(f.recommendations),
            )
            for f in analysed.findings
        ]
    last = max((s for values in series.values() for s, _ in values), default=-1)
    with transaction.atomic():
        TrainingRun.objects.select_for_update().get(pk=run_id)
        run.findings.all().delete()
        RunFinding.objects.bulk_create(rows)
        TrainingRun.objects.filter(pk=run_id).update(
            analyzed_at=timezone.now(),
            analyzed_step=last,
            early_stopping_step=stop,
        )
    critical = [r for r in rows if r.severity in ("critical", "error")]
    if critical:
        _file_issue(run, critical)
    run.refresh_from_db()
    return run


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _file_issue(run: TrainingRun, findings: list[RunFinding]) -> None:
    from apps.issues.choices import Category, Severity
    from apps.issues.services import issue_report_check_failure

    codes = sorted({f.code for f in findings})
    first = min(findings, key=lambda f: f.start_step)
    issue = issue_report_check_failure(
        app="models",
        check="convergence",
        error=f"run {run.pk}: " + ",".join(codes),
        category=Category.TRAINING,
        severity=Severity.HIGH,
        dataset_version=run.dataset_version,
        description=f"Training run {run.pk} ({run.name}): {first.message} Recommended: "
        + "; ".join(first.recommendations[:3]),
        details={"run": run.pk, "codes": codes, "from_step": first.start_step},
    )
    TrainingRun.objects.filter(pk=run.pk).update(issue_id=issue.pk)


def run_finish(
    *,
    run: TrainingRun,
    status: str = RunStatus.FINISHED,
    weights_path: str = "",
    model_name: str = "",
    model_version: str = "",
    error: str = "",
    user: Any = None,
) -> TrainingRun:
    """Close the run (idempotent); with ``weights_path``, register the weights as a
    model version linked to the run and its dataset version. Diagnosis runs at the end."""
    if status not in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.ABORTED):
        raise InvalidInput("invalid_status", "status is finished, failed or aborted.")
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.RUNNING:
            return locked
        mv = (
            _register(locked, weights_path, model_name, model_version, user)
            if weights_path
            else None
        )
        locked.status, locked.finished_at, locked.error = (
            status,
            timezone.now(),
            (error or "")[:500],
        )
        locked.model_version = mv or locked.model_version
        locked.save(update_fields=["status", "finished_at", "error", "model_version"])
        outbox_enqueue(
            task=DIAGNOSE_TASK,
            kwargs={"run_id": locked.pk},
            dedupe_key=f"run-diagnose-final:{locked.pk}",
        )
    return locked


def _register(
    run: TrainingRun, weights_path: str, name: str, version: str, user: Any
) -> ModelVersion:
    """Register the run's weights. A script's token (no ``register_model``) may only
    name weights under ``MAHTQA_MODEL_DIR``; the version is registered by the system for
    the run (its creator is on the run)."""
    from apps.models.files import weights_path_resolve
    from apps.models.services.registry import REGISTER_PERMS, manifest_read, model_version_register

    trusted = user is not None and any(user.has_perm(p) for p in REGISTER_PERMS)
    path = weights_path_resolve(weights_path)
    if not trusted:
        base = Path(settings.MAHTQA_MODEL_DIR).resolve()
        if not path.resolve().is_relative_to(base) or ".." in Path(weights_path).parts:
            raise InvalidInput(
                "weights_outside_model_dir",
                "Weights must be under the model directory.",
                details={"field": "weights_path"},
            )
    manifest = manifest_read(weights_file=path) if path.is_file() else {}
    mv = model_version_register(
        name=name or str(manifest.get("name") or run.name),
        version=version or str(manifest.get("version") or f"run{run.pk}"),
        weights_path=weights_path,
        registered_by=user if trusted else None,
    )
    if mv.dataset_version_id is None and run.dataset_version_id:
        ModelVersion.objects.filter(pk=mv.pk).update(dataset_version_id=run.dataset_version_id)
        mv.refresh_from_db()
    return mv
