"""Sites: which hospital and device a study comes from (keyed, de-identified)."""

from __future__ import annotations

import hashlib
import hmac
import math
import threading

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.clinical.choices import AuditAction
from apps.clinical.models import Site
from apps.clinical.services.audit import audit_record
from apps.core.errors import Conflict
from mahtqa.cephalometry.metrics import review_errors_mm
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


def _reviewed_cases(site: Site, model_sha256: str) -> tuple[list[float], list[bool], int, list]:
    """(case risks, unsafe flags, skipped, OOD details) of the site's reviewed cases on this
    model: the error of each AI landmark against the reviewer's final landmark, in mm.
    Only this site's own studies, accepted or corrected (a rejected image is not one)."""
    from apps.clinical.models import Review

    scores, unsafe, skipped, details = [], [], 0, []
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
        errors = review_errors_mm(review.landmarks_before, review.landmarks_after, spacing)
        if errors is None:
            skipped += 1
            continue
        scores.append(float(pred.case_risk))
        unsafe.append(bool(errors.max() > UNSAFE_MM))
        details.append(pred.ood_details or {})
    return scores, unsafe, skipped, details


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
    """Propose a site calibration from its reviewed cases: the release threshold on the
    case risk certified by Learn-then-Test for the policy's tolerated risk, with its
    Clopper-Pearson bound, on this site's own cases. Stored as ``site.proposal``."""
    from apps.clinical.services.policy import routing_policy_current
    from apps.models.selectors import model_version_active
    from mahtqa.engine.risk import learn_then_test  # scipy: not at web-process start

    model = model_version_active()
    if model is None:
        raise Conflict("no_active_model", "No model version is active.")
    scores, unsafe, skipped, details = _reviewed_cases(site, model.sha256)
    min_reviewed = site_min_reviewed() if min_reviewed is None else min_reviewed
    if len(scores) < min_reviewed:
        raise Conflict(
            "too_few_reviewed",
            f"{site.key} has {len(scores)} reviewed cases on {model}; {min_reviewed} are needed.",
            details={"reviewed": len(scores), "needed": min_reviewed},
        )
    alpha = routing_policy_current().tolerated_risk
    decision = learn_then_test(np.array(scores), np.array(unsafe), alpha=alpha, delta=DELTA)
    ood_reference, ood = _site_ood(model, details)
    n = len(scores)
    proposal = {
        **{k: v for k, v in decision.as_dict().items() if k != "tested"},
        "model": str(model), "model_sha256": model.sha256, "skipped": skipped,
        "unsafe_cases": int(sum(unsafe)), "confidence": f"{1 - DELTA:.0%}",
        "best_certifiable_risk": round(1 - DELTA ** (1 / n), 4),
        "cases_needed_for_risk": math.ceil(math.log(DELTA) / math.log(1 - alpha)),
        "proposed_at": timezone.now().isoformat(timespec="seconds"),
        "proposed_by": getattr(user, "username", "") or "",
        "ood_reference": ood_reference, "ood": ood,
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
            "alpha", "model", "ood")  # fmt: skip
    return {k: (p or {}).get(k) for k in keys}


def site_list() -> list[dict]:
    """Every site with its reviewed count and the policy in force (for the CLI and page)."""
    from django.db.models import Count, Q

    rows = Site.objects.annotate(
        reviewed=Count("studies", filter=Q(studies__status="reviewed"))
    ).order_by("key")
    return [
        {"site": s.key, "device": s.device, "reviewed": s.reviewed, "review_all": s.review_all,
         "policy": "site calibration" if s.policy else "global calibration",
         "threshold": (s.policy or {}).get("threshold"), "proposal": bool(s.proposal),
         "ood_reference": "site" if (s.policy or {}).get("ood_reference") else "global"}
        for s in rows
    ]  # fmt: skip
