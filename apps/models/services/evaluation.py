"""Evaluation runs (a model version on a dataset version's split, a job on queue
``inference``), the paired comparison of two versions, and the release gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, InvalidInput
from apps.models.choices import ACTIVE_JOB_STATUSES, JobStatus
from apps.models.models import EvaluationRun, ModelVersion, ReleaseGate
from apps.outbox.services import outbox_enqueue

TASK = "apps.models.tasks.inference_evaluate_task"
SPLITS = ("train", "validation", "test", "all")
BOOTSTRAP = 2000


def evaluation_start(
    *, model_version: ModelVersion, dataset_version: Any, split: str, user: Any = None
) -> EvaluationRun:
    if split not in SPLITS:
        raise InvalidInput(
            "invalid_split", f"split is one of {', '.join(SPLITS)}.", details={"field": "split"}
        )
    from apps.datasets.selectors import dataset_split_cases

    n = len(dataset_split_cases(version=dataset_version, split=split))
    if n == 0:
        raise InvalidInput(
            "empty_split", f"The {split} split of {dataset_version} has no annotated image."
        )
    with transaction.atomic():
        run = EvaluationRun.objects.create(
            model_version=model_version,
            dataset_version=dataset_version,
            split=split,
            total=n,
            created_by=user if getattr(user, "pk", None) else None,
        )
        outbox_enqueue(
            task=TASK,
            kwargs={"evaluation_id": run.pk},
            dedupe_key=f"evaluate:{run.pk}",
            new_key=True,
        )
    return run


def _tradeoff(risk: np.ndarray, unsafe: np.ndarray) -> list[dict[str, float]]:
    """Release the k lowest-risk cases, for every k: release rate vs unsafe share."""
    order = np.argsort(risk, kind="stable")
    out = []
    for k in range(0, len(order) + 1, max(1, len(order) // 20)):
        released = unsafe[order[:k]]
        out.append(
            {
                "release_pct": round(100 * k / len(order), 1),
                "unsafe_pct": round(100 * float(released.mean()), 1) if k else 0.0,
            }
        )
    return out


def _metrics(cases: list[dict]) -> dict[str, Any]:
    from mahtqa.cephalometry.landmarks import ABBREVIATIONS
    from mahtqa.cephalometry.metrics import auroc, reliability_table, summarize_errors

    errors = np.array([c["errors_mm"] for c in cases], float)
    conf = np.array([c["confidence"] for c in cases], float)
    risk = np.array([c["risk"] for c in cases], float)
    unsafe = (errors > 4.0).any(axis=1)
    released = np.array([c["released"] for c in cases], bool)
    summary = summarize_errors(errors)
    labels = (errors > 2.0).ravel()
    out = {
        "n_cases": len(cases),
        "summary": summary,
        "mre_mm": round(float(errors.mean()), 3),
        "sdr": {f"{t}": round(100 * float((errors <= t).mean()), 1) for t in (2.0, 2.5, 3.0, 4.0)},
        "per_landmark": {
            n: {
                "mre_mm": round(float(errors[:, i].mean()), 3),
                "sdr2": round(100 * float((errors[:, i] <= 2).mean()), 1),
            }
            for i, n in enumerate(ABBREVIATIONS)
        },
        "grades": summary["grades"],
        "auroc_gt2mm": _safe(lambda: auroc(1.0 - conf.ravel(), labels)),
        "case_auroc_gt4mm": _safe(lambda: auroc(risk, unsafe)),
        "reliability": _safe(lambda: reliability_table(conf.ravel(), errors.ravel()), default=[]),
        "tradeoff": _tradeoff(risk, unsafe),
        "released_pct": round(100 * float(released.mean()), 1),
        "unsafe_release_pct": round(
            100 * float((unsafe & released).sum() / max(1, released.sum())), 2
        ),
        "unsafe_released": int((unsafe & released).sum()),
    }
    worst = sorted(cases, key=lambda c: -max(c["errors_mm"]))[:10]
    out["worst"] = [
        {
            "key": c["key"],
            "max_mm": round(max(c["errors_mm"]), 2),
            "landmark": ABBREVIATIONS[int(np.argmax(c["errors_mm"]))],
        }
        for c in worst
    ]
    return out


def _safe(fn, default=None):
    try:
        value = fn()
    except (ValueError, ZeroDivisionError):
        return default
    if isinstance(value, float) and not np.isfinite(value):
        return default
    return value


def evaluation_execute(*, evaluation_id: int) -> EvaluationRun:
    """Predict every case of the split; safe to run twice (a finished run stays)."""
    from apps.clinical.services.pipeline import prediction_decide
    from apps.datasets.selectors import dataset_split_cases
    from apps.models.loader import predictor_for
    from mahtqa.cephalometry.metrics import radial_errors_mm
    from mahtqa.datasets.checks import decode_gray

    with transaction.atomic():
        run = (
            EvaluationRun.objects.select_for_update()
            .select_related("model_version", "dataset_version")
            .get(pk=evaluation_id)
        )
        if run.status not in ACTIVE_JOB_STATUSES:
            return run
        EvaluationRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, done=0)
    predictor = predictor_for(run.model_version)
    cases = []
    todo = dataset_split_cases(version=run.dataset_version, split=run.split)
    for n, case in enumerate(todo, start=1):
        try:
            gray = decode_gray(Path(case.path).read_bytes(), case.fmt)
        except OSError:
            gray = None
        if gray is not None:
            result = predictor.predict(gray, spacing_mm=case.spacing)
            pred = np.asarray(result.points(), float)
            _, _, _, decision = prediction_decide(
                result=result,
                spacing=case.spacing,
                width=gray.shape[1],
                model_version=run.model_version,
                shape_model=predictor.shape_model,
            )
            cases.append(
                {
                    "key": case.key,
                    "errors_mm": radial_errors_mm(pred, case.truth, case.spacing).round(4).tolist(),
                    "confidence": [round(lm.confidence, 4) for lm in result.landmarks],
                    "risk": float(result.case_risk)
                    if result.case_risk is not None
                    else 1.0 - min(lm.confidence for lm in result.landmarks),
                    "released": decision.destination == "released",
                }
            )
        if n % 5 == 0 or n == len(todo):
            EvaluationRun.objects.filter(pk=run.pk).update(done=n)
    status = JobStatus.DONE if cases else JobStatus.FAILED
    EvaluationRun.objects.filter(pk=run.pk).update(
        status=status,
        cases=cases,
        metrics=_metrics(cases) if cases else {},
        finished_at=timezone.now(),
        error="" if cases else "No image of the split could be read.",
    )
    return EvaluationRun.objects.get(pk=run.pk)


def evaluation_compare(*, a: EvaluationRun, b: EvaluationRun, seed: int = 0) -> dict[str, Any]:
    """Paired statistics on the cases both evaluated: Wilcoxon signed-rank on per-case
    mean errors and a bootstrap 95 % interval of the MRE difference (b - a)."""
    from scipy.stats import wilcoxon

    ea = {c["key"]: np.mean(c["errors_mm"]) for c in a.cases}
    eb = {c["key"]: np.mean(c["errors_mm"]) for c in b.cases}
    keys = sorted(set(ea) & set(eb))
    if len(keys) < 2:
        raise Conflict("too_few_common_cases", "The two evaluations share fewer than two cases.")
    x, y = np.array([ea[k] for k in keys]), np.array([eb[k] for k in keys])
    d = y - x
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), size=(BOOTSTRAP, len(d)))].mean(axis=1)
    p = float(wilcoxon(x, y).pvalue) if np.any(d != 0) else 1.0
    return {
        "n": len(keys),
        "mre_a": round(float(x.mean()), 3),
        "mre_b": round(float(y.mean()), 3),
        "difference_mm": round(float(d.mean()), 3),
        "ci95_mm": [
            round(float(np.percentile(boots, 2.5)), 3),
            round(float(np.percentile(boots, 97.5)), 3),
        ],
        "wilcoxon_p": p,
        "b_better_cases": int((d < 0).sum()),
        "a_better_cases": int((d > 0).sum()),
    }


@dataclass(frozen=True)
class GateResult:
    passed: bool
    failures: list[dict[str, Any]]
    evaluation: EvaluationRun | None
    reason: str = ""


def release_gate_get() -> ReleaseGate:
    gate = ReleaseGate.objects.first()
    return gate if gate is not None else ReleaseGate.objects.create()


def _latest(mv: ModelVersion, gate: ReleaseGate) -> EvaluationRun | None:
    return mv.evaluations.filter(
        status=JobStatus.DONE,
        dataset_version=gate.reference_dataset_version,
        split=gate.reference_split,
    ).first()


def release_gate_check(*, model_version: ModelVersion) -> GateResult:
    """Every gate the admin set, against the latest evaluation on the reference split."""
    gate = release_gate_get()
    if not gate.enabled:
        return GateResult(True, [], None, "gates off")
    if gate.reference_dataset_version is None:
        return GateResult(
            False, [{"gate": "reference", "message": "No reference dataset version is set."}], None
        )
    ev = _latest(model_version, gate)
    if ev is None:
        ref = f"{gate.reference_dataset_version} ({gate.reference_split})"
        msg = f"No finished evaluation of {model_version} on {ref}."
        return GateResult(False, [{"gate": "evaluation", "message": msg}], None)
    m, failures = ev.metrics, []

    def check(name: str, value, limit, worse) -> None:
        if limit is not None and value is not None and worse(value, limit):
            failures.append(
                {
                    "gate": name,
                    "value": value,
                    "limit": limit,
                    "message": f"{name} {value} (limit {limit})",
                }
            )

    check("MRE mm", m.get("mre_mm"), gate.max_mre_mm, lambda v, lim: v > lim)
    check("SDR@2 %", m.get("sdr", {}).get("2.0"), gate.min_sdr2, lambda v, lim: v < lim)
    check("AUROC", m.get("auroc_gt2mm"), gate.min_auroc, lambda v, lim: v < lim)
    check(
        "unsafe release %",
        m.get("unsafe_release_pct"),
        gate.max_unsafe_rate,
        lambda v, lim: v > lim,
    )
    active = ModelVersion.objects.filter(is_active=True).exclude(pk=model_version.pk).first()
    base = _latest(active, gate) if active is not None else None
    if gate.max_regression_mm is not None and base is not None:
        regression = round(m.get("mre_mm", 0) - base.metrics.get("mre_mm", 0), 3)
        check("MRE regression mm", regression, gate.max_regression_mm, lambda v, lim: v > lim)
    return GateResult(not failures, failures, ev)


def _limit(value: str, field: str) -> float | None:
    if value in ("", None):
        return None
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(
            "invalid_gate", f"{field} is a number (or empty for no gate).", details={"field": field}
        ) from None
    if number < 0:
        raise InvalidInput(
            "invalid_gate", f"{field} must not be negative.", details={"field": field}
        )
    return number


def release_gate_update(
    *,
    gate: ReleaseGate,
    user: Any,
    enabled: bool,
    reference: Any,
    split: str,
    limits: dict[str, str],
) -> ReleaseGate:
    """Admins set the gates (audited). Enabled gates need a reference dataset version."""
    from apps.clinical.services.audit import audit_record

    if split not in SPLITS:
        raise InvalidInput(
            "invalid_split",
            f"split is one of {', '.join(SPLITS)}.",
            details={"field": "reference_split"},
        )
    values = {f: _limit(v, f) for f, v in limits.items()}
    if enabled and reference is None:
        raise InvalidInput(
            "reference_required",
            "Choose the reference dataset version the gates are checked on.",
            details={"field": "reference_dataset_version"},
        )
    for field, value in values.items():
        setattr(gate, field, value)
    gate.enabled, gate.reference_dataset_version, gate.reference_split = enabled, reference, split
    gate.updated_by = user
    gate.save()
    details = {
        "enabled": enabled,
        "reference": getattr(reference, "pk", None),
        "split": split,
        **values,
    }
    audit_record(
        actor=user,
        action="gate_change",
        target_type="release_gate",
        target_id=str(gate.pk),
        details=details,
    )
    return gate
