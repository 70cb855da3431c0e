"""Reads for the clinical performance monitor: predictions and review decisions as records.

Two queries whatever the volume: the predictions of the lookback (with study, site and
model version joined in), and the reviews of those predictions. Identifiers leave as the
study's public id and the site's pseudonymous key only (no PHI).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.clinical.selectors import prediction_case_rows, review_decisions_of
from apps.monitoring.choices import ACTIVE_INCIDENT_STATUSES, Trigger
from apps.monitoring.models import Incident, IncidentEvent, MonitorSettings
from mahtqa.cephalometry.landmarks import ABBREVIATIONS
from mahtqa.monitoring.clinical import CaseRecord, Thresholds

IMAGE_COMPONENTS = ("histogram", "sharpness", "noise", "mean", "contrast")
STATUSES = ("released", "in_review", "reviewed")
KEY_PREFIX = "clinical:"


def _points(rows: list[dict]) -> np.ndarray:
    by = {lm.get("abbreviation"): lm for lm in rows or []}
    return np.array(
        [[float(by.get(a, {}).get("x", np.nan)), float(by.get(a, {}).get("y", np.nan))]
         for a in ABBREVIATIONS]
    )  # fmt: skip


def _confidences(rows: list[dict]) -> np.ndarray:
    by = {lm.get("abbreviation"): lm for lm in rows or []}
    out = []
    for a in ABBREVIATIONS:
        c = by.get(a, {}).get("confidence")
        out.append(float(c) if isinstance(c, int | float) else np.nan)
    return np.array(out)


def _image_score(details: dict) -> float | None:
    scores = [
        float(c["score"]) for name, c in (details or {}).items()
        if name in IMAGE_COMPONENTS and isinstance(c, dict) and "score" in c
    ]  # fmt: skip
    return max(scores) if scores else None


def clinical_lookback() -> tuple[int, int]:
    """(days, most cases) the monitor reads (MAHTQA_CLINICAL_MONITOR_DAYS / _MAX_CASES)."""
    return (
        int(getattr(settings, "MAHTQA_CLINICAL_MONITOR_DAYS", 90)),
        int(getattr(settings, "MAHTQA_CLINICAL_MONITOR_MAX_CASES", 20000)),
    )


def clinical_records(*, now: datetime | None = None, days: int | None = None,
                     max_cases: int | None = None) -> list[CaseRecord]:  # fmt: skip
    """Every predicted case of the lookback (released, in review, reviewed), oldest first,
    with the latest review decision of the prediction it was reviewed on."""
    now = now or timezone.now()
    d, m = clinical_lookback()
    since = now - timedelta(days=days or d)
    preds = prediction_case_rows(since=since, until=now, statuses=STATUSES, limit=max_cases or m)
    reviews: dict[int, tuple[str, list]] = {}
    for pid, outcome, after in review_decisions_of(prediction_ids=[p[0] for p in preds]):
        reviews[pid] = (outcome, after)  # the latest decision wins
    # A study predicted by several versions: the reviewed prediction, else the newest.
    chosen: dict[int, tuple] = {}
    for p in preds:  # newest first
        if p[1] not in chosen or (p[0] in reviews and chosen[p[1]][0] not in reviews):
            chosen[p[1]] = p
    records = []
    for p in sorted(chosen.values(), key=lambda p: (p[11], p[0])):
        pid, study_id, public_id, site, sr, sc, mname, mver, lms, ood, details, at = p
        outcome, after = reviews.get(pid, (None, []))
        final = _points(after) if outcome == "corrected" and after else None
        records.append(CaseRecord(
            case_id=str(public_id), at=at, site=site or "unknown", model_version=f"{mname} {mver}",
            ai_points=_points(lms), confidences=_confidences(lms),
            ood_score=float(ood) if ood is not None and np.isfinite(ood) else None,
            image_score=_image_score(details), decision=outcome, final_points=final,
            spacing_mm=(sr, sc) if sr and sc else None, study_id=study_id,
        ))  # fmt: skip
    return records


def monitor_thresholds(*, config: MonitorSettings, ood_limit: float) -> Thresholds:
    return Thresholds(
        window_cases=config.window_cases, max_mre_mm=config.max_mre_mm,
        max_correction_rate=config.max_correction_rate,
        max_rejection_rate=config.max_rejection_rate, max_ood_rate=config.max_ood_rate,
        drift_alpha=config.drift_alpha, ood_limit=ood_limit,
        reference_cases=int(getattr(settings, "MAHTQA_CLINICAL_REFERENCE_CASES", 200)),
    )  # fmt: skip


def clinical_incidents_active(*, resolved_within: timedelta | None = None) -> list[dict]:
    """The active safety-alert incidents of the clinical monitor, with the evidence of
    their latest trigger (``last_case``), two queries. ``resolved_within``: also those
    resolved or closed that recently (their evidence must not open a new incident)."""
    which = Q(status__in=ACTIVE_INCIDENT_STATUSES)
    if resolved_within is not None:
        which |= Q(resolved_at__gte=timezone.now() - resolved_within)
    incidents = list(
        Incident.objects.filter(
            which, trigger=Trigger.SAFETY_ALERT,
            fingerprint__startswith=f"{Trigger.SAFETY_ALERT}:{KEY_PREFIX}",
        ).order_by("-opened_at")
    )  # fmt: skip
    last: dict[int, dict[str, dict]] = {}  # incident -> alert key -> its latest evidence
    for incident_id, data in (
        IncidentEvent.objects.filter(incident__in=incidents, kind__in=("opened", "folded"))
        .order_by("at", "pk")
        .values_list("incident_id", "data")
    ):
        if data and data.get("key"):
            last.setdefault(incident_id, {})[data["key"]] = data
    return [
        {"incident": i, "key": i.fingerprint.split(":", 1)[1], "alerts": last.get(i.pk, {})}
        for i in incidents
    ]


def clinical_site_incident_key(site: str) -> str:
    """One incident per site: every signal of one site folds into it (one page for the
    on-call radiologist, the signals in its timeline)."""
    return f"{KEY_PREFIX}site:{site}"
