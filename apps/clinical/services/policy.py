"""The versioned routing policy (admin thresholds)."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import IntegrityError, connection, transaction

from apps.clinical.choices import EscalationLevel, ReviewPolicy
from apps.clinical.models import RoutingPolicy
from apps.clinical.routing import OodGate, PolicyView, RiskGate
from apps.core.errors import InvalidInput
from apps.models.selectors import model_version_active
from mahtqa.cephalometry.landmarks import ABBREVIATIONS
from mahtqa.cephalometry.plausibility import PlausibilityConfig
from mahtqa.engine.site_offset import LandmarkOffset

if TYPE_CHECKING:
    from apps.clinical.models import Site
    from mahtqa.engine.types import EnginePrediction

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    # Chosen from the bundled model's routing trade-off on its 20 held-out cases
    # (docs/benchmarks.md, bench/engine.py): releases 75 % of cases and no case with
    # a landmark error over 4 mm. The chin and sella points are normally found with
    # confidence >= 0.93, so they get stricter limits than A, B and N.
    "min_confidence": 0.6,
    "min_confidence_per_landmark": {"S": 0.85, "Pog": 0.9, "Me": 0.85, "Gn": 0.85},
    "max_ood_score": 1.0,
    "review_policy": ReviewPolicy.EXCEPTIONS_ONLY,
    "urgent_severities": ["high"],
    "plausibility": {},
    "sla_minutes": {"urgent": 60, "normal": 24 * 60},
    "escalation_chain": [
        EscalationLevel.RADIOLOGIST,
        EscalationLevel.SENIOR,
        EscalationLevel.ADMIN,
    ],
    "allowed_modalities": ["CR", "DX"],
    "routing_mode": "risk_controlled",
    "tolerated_risk": 0.05,
    "new_sites_review_all": False,
}
ROUTING_MODES = ("risk_controlled", "raw_thresholds")
# The tolerated risks a model's manifest certifies thresholds for (mahtqa.engine.safety).
TOLERATED_RISKS = (0.01, 0.02, 0.05, 0.1)
EDITABLE = tuple(DEFAULTS)


def routing_policy_current() -> RoutingPolicy:
    """The policy in force; version 1 with the defaults is created on first use."""
    policy = RoutingPolicy.objects.order_by("-version").first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            return RoutingPolicy.objects.create(version=1, note="defaults", **DEFAULTS)
    except IntegrityError:  # created concurrently
        return RoutingPolicy.objects.order_by("-version").first()


def routing_policy_modalities() -> tuple[str, ...]:
    """The modalities the policy in force accepts: one column, read per study at the door."""
    # Raw: the ORM spends more compiling this query than PostgreSQL running it.
    with connection.cursor() as cursor:
        cursor.execute(_MODALITIES_SQL)
        row = cursor.fetchone()
    found = row[0] if row is not None else routing_policy_current().allowed_modalities
    return tuple(json.loads(found) if isinstance(found, str) else found)


# The table comes from the model, never from input.
_MODALITIES_SQL = (
    f"SELECT allowed_modalities FROM {RoutingPolicy._meta.db_table} "  # noqa: S608
    "ORDER BY version DESC LIMIT 1"
)


def _validate(values: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    if not 0.0 <= float(values["min_confidence"]) <= 1.0:
        errors["min_confidence"] = "must be between 0 and 1"
    per = values["min_confidence_per_landmark"]
    if not isinstance(per, dict) or any(k not in ABBREVIATIONS for k in per):
        errors["min_confidence_per_landmark"] = f"keys must be among {', '.join(ABBREVIATIONS)}"
    elif any(not 0.0 <= float(v) <= 1.0 for v in per.values()):
        errors["min_confidence_per_landmark"] = "values must be between 0 and 1"
    if float(values["max_ood_score"]) <= 0:
        errors["max_ood_score"] = "must be positive"
    if values["review_policy"] not in ReviewPolicy.values:
        errors["review_policy"] = f"must be one of {ReviewPolicy.values}"
    if not set(values["urgent_severities"]) <= {"info", "warning", "high"}:
        errors["urgent_severities"] = "must be among info, warning, high"
    sla = values["sla_minutes"]
    if not isinstance(sla, dict) or set(sla) != {"urgent", "normal"} or min(sla.values()) <= 0:
        errors["sla_minutes"] = "needs positive 'urgent' and 'normal' minutes"
    chain = values["escalation_chain"]
    if not chain or any(level not in EscalationLevel.values for level in chain):
        errors["escalation_chain"] = "must be a non-empty list of levels"
    mods = values["allowed_modalities"]
    if not mods or any(not isinstance(m, str) or not m.isalpha() or len(m) > 16 for m in mods):
        errors["allowed_modalities"] = "must be a non-empty list of DICOM modality codes"
    if values["routing_mode"] not in ROUTING_MODES:
        errors["routing_mode"] = f"must be one of {', '.join(ROUTING_MODES)}"
    if float(values["tolerated_risk"]) not in TOLERATED_RISKS:
        errors["tolerated_risk"] = f"must be one of {', '.join(map(str, TOLERATED_RISKS))}"
    try:
        PlausibilityConfig.from_dict(values["plausibility"] or {})
    except (ValueError, TypeError) as exc:
        errors["plausibility"] = str(exc)
    if errors:
        raise InvalidInput("invalid_policy", "The routing policy is not valid.", details=errors)


def routing_policy_update(*, user, note: str = "", **changes: Any) -> RoutingPolicy:
    """Store a new version with ``changes`` applied to the current one."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput("invalid_policy", f"Unknown settings: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        current = RoutingPolicy.objects.select_for_update().order_by("-version").first()
        current = current or routing_policy_current()
        values = {k: getattr(current, k) for k in EDITABLE} | changes
        _validate(values)
        return RoutingPolicy.objects.create(
            version=current.version + 1, created_by=user, note=note[:200], **values
        )


def policy_view(policy: RoutingPolicy) -> PolicyView:
    return PolicyView(
        version=policy.version,
        min_confidence=policy.min_confidence,
        min_confidence_per_landmark=dict(policy.min_confidence_per_landmark or {}),
        max_ood_score=policy.max_ood_score,
        review_policy=policy.review_policy,
        urgent_severities=tuple(policy.urgent_severities),
        routing_mode=policy.routing_mode,
        tolerated_risk=policy.tolerated_risk,
    )


def risk_certificate(*, manifest: dict, tolerated_risk: float) -> dict | None:
    """The model's certified decision for a tolerated risk (threshold, n, expected release
    rate, Clopper-Pearson bound), or None when the model has no risk control (v1)."""
    control = (manifest or {}).get("risk_control") or {}
    return (control.get("by_alpha") or {}).get(f"{tolerated_risk:g}")


def risk_gate(
    *, policy: RoutingPolicy, manifest: dict, case_risk: float | None, site=None
) -> RiskGate | None:
    """The gate routing applies, or None (raw thresholds: v1 model or the expert mode).

    An onboarded site's accepted calibration (``site.policy``, fitted on its own
    reviewed cases for this model) replaces the global certificate for that site only."""
    if policy.routing_mode != "risk_controlled" or case_risk is None:
        return None
    own = site_policy_for(site=site, manifest=manifest)
    source = "global"
    if own:
        cert, source = own, site.key
    else:
        cert = risk_certificate(manifest=manifest, tolerated_risk=policy.tolerated_risk)
    if cert is None:
        return None
    return RiskGate(
        case_risk=float(case_risk), threshold=cert.get("threshold"),
        tolerated_risk=float(cert.get("alpha", policy.tolerated_risk)),
        n_calibration=int(cert.get("n", 0)), source=source,
    )  # fmt: skip


def ood_gate(*, manifest: dict, ood_details: dict, ood_score: float, site=None) -> OodGate | None:
    """The site's own OOD reference applied to a case, or None (the global guard applies).

    Only an onboarded site whose accepted calibration carries an OOD reference fitted for
    this model (``site.policy["ood_reference"]``, same sha256) gets one."""
    ref = site_policy_for(site=site, manifest=manifest).get("ood_reference")
    if not ref:
        return None
    from mahtqa.engine.ood import SiteOodReference  # cv2: only where a site has one

    score, comps = SiteOodReference.from_dict(ref).score(ood_details or {})
    return OodGate(score=score, source=site.key, global_score=float(ood_score), components=comps)


def site_policy_for(*, site: Site | None, manifest: dict | None) -> dict:
    """The site's accepted calibration when it was fitted for this model (same sha256),
    else an empty dict: a calibration never carries over to another model."""
    own = getattr(site, "policy", None) or {}
    sha = (manifest or {}).get("sha256")
    return own if sha and own.get("model_sha256") == sha else {}


def site_offset_apply(
    *,
    result: EnginePrediction,
    manifest: dict,
    site: Site | None = None,
    spacing_mm: tuple[float, float] | None = None,
) -> EnginePrediction:
    """The engine's result with the site's landmark offset added (a new result), or the
    result itself when the site has none for this model.

    Only an onboarded site whose accepted calibration carries a landmark offset fitted
    for this model (``site.policy["landmark_offset"]``, same sha256) gets one. The
    engine's own points stay in ``risk_details["site_offset"]["engine_points"]``: a
    later calibration of the site is fitted on them, not on corrected points. When the
    offset cannot be applied (a stored offset that is not one, or engine points without
    a face frame), the points stay the engine's, ``not_applied`` says why, and
    ``prediction_decide`` then gates the case on the global calibration, not on the
    site's (which was certified on corrected points)."""
    data = site_policy_for(site=site, manifest=manifest).get("landmark_offset")
    if not data:
        return result
    engine = [[lm.x, lm.y] for lm in result.landmarks]
    record: dict = {"site": site.key, "n": None, "engine_points": engine}
    try:
        offset = LandmarkOffset.from_dict(data)
        record["n"] = offset.n
        moved = offset.apply(np.array(engine), spacing_mm=spacing_mm)
    except ValueError as exc:
        logger.error("site %s: landmark offset not applied: %s", site.key, exc)
        record["not_applied"] = str(exc)
        return dataclasses.replace(
            result, risk_details={**result.risk_details, "site_offset": record}
        )
    landmarks = [
        dataclasses.replace(lm, x=float(x), y=float(y))
        for lm, (x, y) in zip(result.landmarks, moved.tolist(), strict=True)
    ]
    return dataclasses.replace(
        result, landmarks=landmarks, risk_details={**result.risk_details, "site_offset": record}
    )


def site_reviews_all(*, policy: RoutingPolicy, site) -> bool:
    """A site set to review-all, or any site not yet onboarded when the policy says so."""
    if site is None:
        return False
    return bool(site.review_all or (policy.new_sites_review_all and not site.policy))


def risk_summary(*, policy: RoutingPolicy) -> dict:
    """What the thresholds page shows about the active model's risk control."""
    model = model_version_active()
    manifest = model.manifest if model is not None else {}
    control = (manifest or {}).get("risk_control") or {}
    rows = []
    for alpha in TOLERATED_RISKS:
        cert = risk_certificate(manifest=manifest, tolerated_risk=alpha)
        if cert is not None:
            rows.append({**cert, "alpha": alpha, "in_force": alpha == policy.tolerated_risk})
    return {
        "model": str(model) if model is not None else "",
        "available": bool(rows),
        "rows": rows,
        "in_force": next((r for r in rows if r["in_force"]), None),
        "delta": control.get("delta"),
        "method": control.get("method", ""),
        "evaluated_on": control.get("evaluated_on", ""),
        "nested": control.get("nested", {}),
    }
