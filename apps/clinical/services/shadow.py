"""Shadow mode: a candidate model version runs beside the active one on live studies
(queue ``inference``). Its result is stored apart (``ShadowPrediction``), never
released and never shown as the result; the comparison says how it would differ."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction

from apps.clinical.models import Prediction, ShadowPrediction, Study
from apps.outbox.services import outbox_enqueue

TASK = "apps.clinical.tasks.study_infer_shadow_task"
DONE = ("released", "in_review", "reviewed")


def shadow_enqueue(*, study_id: int, candidates: list[Any]) -> int:
    """Inside the transaction that stores the active prediction: one shadow job per
    candidate (deduplicated per study and candidate)."""
    for mv in candidates:
        outbox_enqueue(
            task=TASK,
            kwargs={"study_id": study_id, "model_version_id": mv.pk},
            dedupe_key=f"shadow:{study_id}:{mv.pk}",
        )
    return len(candidates)


def study_infer_shadow(*, study_id: int, model_version_id: int) -> str:
    """Run the candidate on the study; safe to run twice (the row is replaced)."""
    from apps.clinical.services.intake import dicom_limits
    from apps.clinical.services.pipeline import prediction_decide
    from apps.clinical.services.policy import site_offset_apply
    from apps.models.loader import predictor_for
    from apps.models.selectors import model_version_get
    from mahtqa.imaging.dicom import decode_radiograph
    from mahtqa.imaging.errors import ImagingError

    study = Study.objects.filter(pk=study_id).first()
    mv = model_version_get(pk=model_version_id)
    if study is None or mv is None or not mv.in_shadow or study.status not in DONE:
        return "skipped"
    with default_storage.open(study.deid_file, "rb") as fh:
        data = fh.read()
    try:
        image = decode_radiograph(data, limits=dicom_limits())
    except ImagingError:
        return "skipped"
    predictor = predictor_for(mv)
    result = site_offset_apply(  # a no-op unless the site's offset was fitted for this model
        result=predictor.predict(image.pixels, spacing_mm=study.spacing_mm),
        manifest=mv.manifest, site=study.site, spacing_mm=study.spacing_mm,
    )  # fmt: skip
    landmarks, _, _, decision = prediction_decide(
        result=result,
        spacing=study.spacing_mm,
        width=study.cols,
        model_version=mv,
        shape_model=predictor.shape_model,
        site=study.site,
    )
    ood = result.ood_score if np.isfinite(result.ood_score) else 99.0
    with transaction.atomic():
        ShadowPrediction.objects.update_or_create(
            study=study,
            model_version=mv,
            defaults={
                "landmarks": landmarks,
                "ood_score": ood,
                "case_risk": result.case_risk,
                "routing": decision.as_dict(),
            },
        )
    return "stored"


def shadow_backfill(*, model_version: Any, limit: int = 50) -> int:
    """Queue the candidate on the most recent finished studies (so a comparison has
    cases at once, e.g. the demo studies)."""
    ids = list(
        Study.objects.filter(status__in=DONE).order_by("-id").values_list("id", flat=True)[:limit]
    )
    with transaction.atomic():
        return sum(shadow_enqueue(study_id=i, candidates=[model_version]) for i in ids)


def _distances(active: list[dict], shadow: list[dict]) -> list[float | None]:
    out = []
    for a, b in zip(active, shadow, strict=False):
        if a.get("x_mm") is not None and b.get("x_mm") is not None:
            out.append(float(np.hypot(a["x_mm"] - b["x_mm"], a["y_mm"] - b["y_mm"])))
        else:
            out.append(None)
    return out


def _engine_landmarks(prediction: Prediction) -> list[dict]:
    """The active model's own points: a site's landmark offset (fitted for that model
    only) is not part of the model-to-model comparison."""
    engine = ((prediction.risk_details or {}).get("site_offset") or {}).get("engine_points")
    if not engine:
        return prediction.landmarks
    return [{**lm, "x": x, "y": y} for lm, (x, y) in zip(prediction.landmarks, engine, strict=True)]


def shadow_comparison(*, model_version: Any, limit: int = 20) -> dict[str, Any]:
    """Agreement per landmark (mm), routing differences and the cases where the
    candidate and the active model disagree most (de-identified ids only)."""
    shadows = list(
        ShadowPrediction.objects.filter(model_version=model_version).select_related("study")
    )
    latest = (
        Prediction.objects.filter(study_id__in=[s.study_id for s in shadows])
        .exclude(model_version=model_version)
        .order_by("study_id", "-created_at")
    )
    active_of: dict[int, Prediction] = {}
    for p in latest:  # one query: the newest active prediction of each study
        active_of.setdefault(p.study_id, p)
    rows = []
    for s in shadows:
        active = active_of.get(s.study_id)
        if active is None:
            continue
        d = _distances(_engine_landmarks(active), s.landmarks)
        rows.append(
            {
                "study": str(s.study.public_id),
                "pseudonym": s.study.patient_pseudonym,
                "distances": d,
                "active": active.routing.get("destination"),
                "shadow": s.routing.get("destination"),
                "max_mm": max((x for x in d if x is not None), default=None),
            }
        )
    names = [lm.get("abbreviation") for lm in (shadows[0].landmarks if shadows else [])]
    per_landmark = {}
    for i, name in enumerate(names):
        values = [
            r["distances"][i]
            for r in rows
            if i < len(r["distances"]) and r["distances"][i] is not None
        ]
        per_landmark[name] = {
            "mean_mm": round(float(np.mean(values)), 2) if values else None,
            "within_2mm_pct": round(100 * float(np.mean(np.array(values) <= 2)), 1)
            if values
            else None,
        }
    routing: dict[str, int] = {}
    for r in rows:
        key = f"{r['active']} -> {r['shadow']}"
        routing[key] = routing.get(key, 0) + 1
    worst = sorted((r for r in rows if r["max_mm"] is not None), key=lambda r: -r["max_mm"])[:limit]
    return {
        "n": len(rows),
        "per_landmark": per_landmark,
        "routing": routing,
        "routing_changed": sum(1 for r in rows if r["active"] != r["shadow"]),
        "worst": worst,
    }
