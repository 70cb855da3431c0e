"""Sites: which hospital and device a study comes from (keyed, de-identified)."""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.clinical.choices import AuditAction
from apps.clinical.models import Site
from apps.clinical.services.audit import audit_record
from apps.core.errors import Conflict
from mahtqa.cephalometry.landmarks import ABBREVIATIONS, N_LANDMARKS
from mahtqa.cephalometry.metrics import radial_errors_mm
from mahtqa.engine.site_offset import LandmarkOffset, framable, leave_one_out
from mahtqa.imaging.site import SiteFields, site_key

UNSAFE_MM = 4.0

_CACHE: dict[str, int] = {}  # site key -> row id (sites are few and never deleted)
_LOCK = threading.Lock()


def _site_secret() -> bytes:
    """A key of its own, derived from the pseudonymisation key (domain-separated)."""
    return hmac.new(
        settings.PHI_PSEUDONYM_KEY.encode(), b"mahtqa-site-key", hashlib.sha256
    ).digest()


def site_for(*, fields: SiteFields) -> Site:
    """The site of a header (created on first sight); one query at most per new site."""
    key = site_key(fields, key=_site_secret())
    with _LOCK:
        pk = _CACHE.get(key)
    if pk is not None:
        return Site(pk=pk, key=key)  # a reference is all intake needs
    try:
        with transaction.atomic():
            site, _ = Site.objects.get_or_create(key=key, defaults={"device": fields.device[:128]})
    except IntegrityError:  # created concurrently
        site = Site.objects.get(key=key)
    with _LOCK:
        _CACHE[key] = site.pk
    return site


def site_cache_clear() -> None:
    with _LOCK:
        _CACHE.clear()


def site_review_all_set(*, site: Site, review_all: bool, user, ip: str | None = None) -> Site:
    """Send every case of a site to review (or stop doing so); audited."""
    Site.objects.filter(pk=site.pk).update(review_all=review_all)
    site.review_all = review_all
    audit_record(
        actor=user, action=AuditAction.SITE_REVIEW_ALL, target_type="site", target_id=site.key,
        ip=ip, details={"review_all": review_all},
    )  # fmt: skip
    return site


DELTA = 0.05


def site_min_reviewed() -> int:
    """Reviewed cases a site needs before it can be calibrated (MAHTQA_SITE_MIN_REVIEWED)."""
    return int(getattr(settings, "MAHTQA_SITE_MIN_REVIEWED", 30))


def site_ood_min_cases() -> int:
    """Reviewed cases a site's own OOD reference needs (MAHTQA_SITE_OOD_MIN_CASES)."""
    from mahtqa.engine.ood import SITE_MIN_CASES

    return int(getattr(settings, "MAHTQA_SITE_OOD_MIN_CASES", SITE_MIN_CASES))


@dataclass(frozen=True)
class _Reviewed:
    """One reviewed case of a site: the case risk, the engine's own points (before any
    site offset), the reviewer's final points (pixels, engine order), the spacing and
    the stored OOD details."""

    risk: float
    engine: list[list[float]]
    final: list[list[float]]
    spacing: tuple[float, float]
    ood_details: dict


def _reviewed_cases(site: Site, model_sha256: str) -> tuple[list[_Reviewed], int]:
    """The site's reviewed cases on this model, and how many were skipped. Only this
    site's own studies, accepted or corrected (a rejected image is not one)."""
    from apps.clinical.models import Review

    cases, skipped = [], 0
    reviews = (
        Review.objects.filter(study__site=site, outcome__in=("accepted", "corrected"))
        .select_related("study", "prediction__model_version")
        .order_by("created_at", "id")
    )
    for review in reviews:
        pred, study = review.prediction, review.study
        spacing = study.spacing_mm
        if pred.case_risk is None or spacing is None or pred.model_version.sha256 != model_sha256:
            skipped += 1
            continue
        final = {lm["abbreviation"]: [lm["x"], lm["y"]] for lm in review.landmarks_after}
        before = review.landmarks_before or []
        if len(before) != N_LANDMARKS or any(lm["abbreviation"] not in final for lm in before):
            skipped += 1
            continue
        engine = (pred.risk_details or {}).get("site_offset", {}).get("engine_points")
        cases.append(
            _Reviewed(
                risk=float(pred.case_risk),
                engine=engine or [[lm["x"], lm["y"]] for lm in before],
                final=[final[lm["abbreviation"]] for lm in before],
                spacing=spacing,
                ood_details=pred.ood_details or {},
            )
        )
    return cases, skipped


def _per_case_mm(a: np.ndarray, b: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """(n, 7) distances in mm between two (n, 7, 2) point sets, each case at its spacing."""
    pairs = zip(a, b, spacing, strict=True)
    return np.array([radial_errors_mm(p, q, tuple(sp)) for p, q, sp in pairs])


def _site_offset(cases: list[_Reviewed]) -> tuple[dict | None, dict, np.ndarray]:
    """The site's landmark offset (``mahtqa.engine.site_offset``), what it does on the
    site's reviewed cases (each corrected by the offset fitted on the others), and the
    per-case worst error in mm the risk threshold is certified on. A case whose engine
    points have no face frame (S on N) is left out of the fit and keeps its own error."""
    engine = np.array([c.engine for c in cases], dtype=float)
    final = np.array([c.final for c in cases], dtype=float)
    spacing = np.array([c.spacing for c in cases], dtype=float)
    before = _per_case_mm(engine, final, spacing)
    worst = before.max(axis=1)
    summary = {"mre_before_mm": round(float(before.mean()), 3),
               "unsafe_before": int((worst > UNSAFE_MM).sum())}  # fmt: skip
    ok = framable(engine, spacing)
    if ok.sum() < 2:
        return None, {**summary, "note": "no landmark offset: fewer than 2 cases with a face "
                      "frame (S apart from N, Me off the S-N line)"}, worst  # fmt: skip
    engine, final, spacing = engine[ok], final[ok], spacing[ok]
    offset = LandmarkOffset.fit(predicted=engine, final=final, spacing_mm=spacing)
    after = before.copy()
    after[ok] = _per_case_mm(
        leave_one_out(predicted=engine, final=final, spacing_mm=spacing), final, spacing
    )
    shift = _per_case_mm(offset.apply(engine, spacing_mm=spacing), engine, spacing)
    summary |= {"mre_after_mm": round(float(after.mean()), 3),
                "unsafe_after": int((after.max(axis=1) > UNSAFE_MM).sum()),
                "cases_without_frame": int((~ok).sum()),
                "median_shift_mm": dict(zip(ABBREVIATIONS, np.round(np.median(shift, axis=0), 2)
                                            .tolist(), strict=True))}  # fmt: skip
    return offset.to_dict(), summary, after.max(axis=1)


def _site_ood(model, details: list[dict]) -> tuple[dict | None, dict]:
    """The site's own OOD reference (None when it cannot be fitted) and its summary."""
    from mahtqa.engine.ood import SiteOodReference

    usable = [d for d in details if d]
    needed = site_ood_min_cases()
    summary = {"n": len(usable), "needed": needed}
    if len(usable) < needed:
        return None, {**summary, "note": f"{len(usable)} cases with OOD details; {needed} needed"}
    from apps.models.loader import ModelIntegrityError, predictor_for

    try:
        training = predictor_for(model).ood_reference
    except ModelIntegrityError as exc:
        return None, {**summary, "note": f"training reference unavailable: {exc}"}
    if training is None:
        return None, {**summary, "note": "the model has no OOD reference"}
    try:
        ref = SiteOodReference.fit(details=usable, prior_sd=training.spreads(), min_cases=needed)
    except ValueError as exc:  # too few cases for the coverage
        return None, {**summary, "note": str(exc)}
    loo = np.asarray(ref.loo_scores)
    return ref.to_dict(), {**summary, "limit": round(ref.limit, 3), "coverage": ref.coverage,
                           "loo_pass_rate": round(float((loo <= ref.limit).mean()), 3)}  # fmt: skip


def site_calibrate(*, site: Site, user=None, min_reviewed: int | None = None) -> dict:
    """Propose a site calibration from its reviewed cases: the site's landmark offset
    (the engine's systematic shift against its reviewers, ``mahtqa.engine.site_offset``),
    the release threshold on the case risk certified by Learn-then-Test for the policy's
    tolerated risk on this site's own cases, each judged with the offset fitted on the
    others, with its Clopper-Pearson bound, and the site's OOD reference. Stored as
    ``site.proposal``."""
    from apps.clinical.services.policy import routing_policy_current
    from apps.models.selectors import model_version_active
    from mahtqa.engine.risk import learn_then_test  # scipy: not at web-process start

    model = model_version_active()
    if model is None:
        raise Conflict("no_active_model", "No model version is active.")
    cases, skipped = _reviewed_cases(site, model.sha256)
    min_reviewed = site_min_reviewed() if min_reviewed is None else min_reviewed
    min_reviewed = max(min_reviewed, 2)  # a leave-one-out needs two
    if len(cases) < min_reviewed:
        raise Conflict(
            "too_few_reviewed",
            f"{site.key} has {len(cases)} reviewed cases on {model}; {min_reviewed} are needed.",
            details={"reviewed": len(cases), "needed": min_reviewed},
        )
    alpha = routing_policy_current().tolerated_risk
    offset, offset_summary, worst_mm = _site_offset(cases)
    unsafe = worst_mm > UNSAFE_MM
    scores = np.array([c.risk for c in cases])
    decision = learn_then_test(scores, unsafe, alpha=alpha, delta=DELTA)
    ood_reference, ood = _site_ood(model, [c.ood_details for c in cases])
    n = len(cases)
    proposal = {
        **{k: v for k, v in decision.as_dict().items() if k != "tested"},
        "model": str(model), "model_sha256": model.sha256, "skipped": skipped,
        "unsafe_cases": int(sum(unsafe)), "confidence": f"{1 - DELTA:.0%}",
        "best_certifiable_risk": round(1 - DELTA ** (1 / n), 4),
        "cases_needed_for_risk": math.ceil(math.log(DELTA) / math.log(1 - alpha)),
        "proposed_at": timezone.now().isoformat(timespec="seconds"),
        "proposed_by": getattr(user, "username", "") or "",
        "ood_reference": ood_reference, "ood": ood,
        "landmark_offset": offset, "offset": offset_summary,
    }  # fmt: skip
    Site.objects.filter(pk=site.pk).update(proposal=proposal)
    site.proposal = proposal
    audit_record(actor=user, action=AuditAction.SITE_CALIBRATE, target_type="site",
                 target_id=site.key, details=_brief(proposal))  # fmt: skip
    return proposal


def site_calibration_decide(*, site: Site, accept: bool, user, ip: str | None = None) -> Site:
    """Accept (the site routes on its own threshold from now on) or reject the proposal."""
    if not site.proposal:
        raise Conflict("no_proposal", f"{site.key} has no calibration proposal.")
    with transaction.atomic():
        site = Site.objects.select_for_update().get(pk=site.pk)
        if accept:
            site.policy = {**site.proposal, "accepted_by": getattr(user, "username", "")}
            site.onboarded_at = timezone.now()
        site.proposal = None
        site.save(update_fields=["policy", "onboarded_at", "proposal"])
    audit_record(
        actor=user, action=AuditAction.SITE_ACCEPT if accept else AuditAction.SITE_REJECT,
        target_type="site", target_id=site.key, ip=ip,
        details=_brief(site.policy) if accept else {},
    )  # fmt: skip
    return site


def _brief(p: dict | None) -> dict:
    keys = ("threshold", "n", "released", "unsafe_released", "release_rate", "unsafe_rate_upper",
            "alpha", "model", "ood", "offset", "landmark_offset")  # fmt: skip
    return {k: (p or {}).get(k) for k in keys}


def site_list() -> list[dict]:
    """Every site with its reviewed count and the policy in force (for the CLI and page).
    A site calibration is bound to the model it was fitted for: under another active
    model the global calibration is in force for that site."""
    from django.db.models import Count, Q

    from apps.models.selectors import model_version_active

    active = model_version_active()
    sha = active.sha256 if active is not None else None
    rows = Site.objects.annotate(
        reviewed=Count("studies", filter=Q(studies__status="reviewed"))
    ).order_by("key")
    out = []
    for s in rows:
        own = s.policy or {}
        live = bool(own) and bool(sha) and own.get("model_sha256") == sha
        policy = "site calibration" if live else "global calibration"
        if own and not live:
            policy += f" (site calibration fitted for {own.get('model', 'another model')})"
        out.append(
            {"site": s.key, "device": s.device, "reviewed": s.reviewed, "review_all": s.review_all,
             "policy": policy, "threshold": own.get("threshold") if live else None,
             "proposal": bool(s.proposal),
             "ood_reference": "site" if live and own.get("ood_reference") else "global",
             "landmark_offset": bool(live and own.get("landmark_offset"))}
        )  # fmt: skip
    return out
