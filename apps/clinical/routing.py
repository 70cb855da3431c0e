"""Routing: released, or review with a priority, and always the reasons why.

Pure functions over plain data so the rule is testable without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.clinical.choices import Destination, Priority, ReviewPolicy


@dataclass(frozen=True)
class PolicyView:
    version: int
    min_confidence: float
    min_confidence_per_landmark: dict[str, float]
    max_ood_score: float
    review_policy: str
    urgent_severities: tuple[str, ...]
    # Risk-controlled routing (engines with an error model): release only when the case's
    # P(any landmark > 4 mm) is at or below the certified threshold for the tolerated
    # risk. ``routing_mode`` "raw_thresholds" uses the per-landmark limits alone.
    routing_mode: str = "risk_controlled"
    tolerated_risk: float = 0.05


@dataclass
class RoutingDecision:
    destination: str
    priority: str | None
    reasons: list[dict] = field(default_factory=list)
    policy_version: int = 0
    risk: dict | None = None  # the risk gate applied (threshold, source), if any
    ood: dict | None = None  # the OOD reference applied when it is a site's own

    def as_dict(self) -> dict:
        out = {
            "destination": self.destination,
            "priority": self.priority,
            "reasons": self.reasons,
            "policy_version": self.policy_version,
        }
        if self.risk is not None:
            out["risk"] = self.risk
        if self.ood is not None:
            out["ood"] = self.ood
        return out


@dataclass(frozen=True)
class RiskGate:
    """The model's certified release threshold for the policy's tolerated risk."""

    case_risk: float  # this case's P(any landmark > 4 mm)
    threshold: float | None  # None: this calibration cannot certify the tolerated risk
    tolerated_risk: float
    n_calibration: int
    source: str = "global"  # "global" (the model's calibration) or the site's key


@dataclass(frozen=True)
class OodGate:
    """An onboarded site's own OOD reference: its score replaces the global one."""

    score: float  # the case's OOD score against the site's reference (1 = its limit)
    source: str  # the site's key
    global_score: float  # against the training reference (still stored and monitored)
    components: dict = field(default_factory=dict)


def route(
    *,
    landmarks: list[dict],
    findings: list[dict],
    ood_score: float,
    policy: PolicyView,
    risk: RiskGate | None = None,
    site_review_all: bool = False,
    ood: OodGate | None = None,
) -> RoutingDecision:
    """Decide where a prediction goes. Urgent beats normal; any reason means review.

    With a ``risk`` gate (risk-controlled mode and an engine with an error model) the
    case risk replaces the per-landmark confidence limits; OOD and findings apply in
    both modes. With an ``ood`` gate (an onboarded site's own reference) the site score
    replaces ``ood_score`` against the same ``max_ood_score``."""
    urgent: list[dict] = []
    normal: list[dict] = []
    for f in findings:
        entry = {"code": f["code"], "message": f["message"], "severity": f["severity"]}
        (urgent if f["severity"] in policy.urgent_severities else normal).append(entry)
    for f in findings:
        if f["code"] == "spacing_unknown" and all(u["code"] != "spacing_unknown" for u in urgent):
            urgent.append({"code": "spacing_unknown", "message": f["message"], "severity": "high"})
    if ood is not None:
        if not ood.score <= policy.max_ood_score:  # NaN counts as out of distribution
            normal.append(_site_ood_reason(ood, policy.max_ood_score))
    elif not ood_score <= policy.max_ood_score:  # NaN counts as out of distribution
        normal.append(
            {
                "code": "out_of_distribution",
                "severity": "warning",
                "message": (
                    f"The radiograph is unlike the training radiographs (OOD score "
                    f"{ood_score:.2f} > {policy.max_ood_score:.2f}); confidences are not "
                    "calibrated for it."
                ),
            }
        )
    if site_review_all:
        normal.append({
            "code": "site_review_all", "severity": "info",
            "message": "This site sends every case to review until it is onboarded.",
        })  # fmt: skip
    if risk is not None:
        normal.extend(_risk_reasons(risk))
    for lm in landmarks if risk is None else []:
        limit = policy.min_confidence_per_landmark.get(lm["abbreviation"], policy.min_confidence)
        if lm["confidence"] < limit:
            normal.append(
                {
                    "code": "low_confidence",
                    "severity": "info",
                    "landmark": lm["abbreviation"],
                    "message": (
                        f"{lm['abbreviation']} confidence {lm['confidence']:.2f} < {limit:.2f}"
                    ),
                }
            )
    gate = None
    if risk is not None:
        gate = {"case_risk": round(risk.case_risk, 5), "threshold": risk.threshold,
                "tolerated_risk": risk.tolerated_risk, "n_calibration": risk.n_calibration,
                "source": risk.source}  # fmt: skip
    decision = _decide(urgent, normal, policy, gate)
    if ood is not None:
        decision.ood = {"score": round(float(ood.score), 3), "source": ood.source,
                        "global_score": round(float(ood.global_score), 3)}  # fmt: skip
    return decision


def _decide(urgent: list, normal: list, policy: PolicyView, gate: dict | None) -> RoutingDecision:
    if urgent:
        return RoutingDecision(
            Destination.REVIEW, Priority.URGENT, urgent + normal, policy.version, gate
        )
    if normal:
        return RoutingDecision(Destination.REVIEW, Priority.NORMAL, normal, policy.version, gate)
    if policy.review_policy == ReviewPolicy.ALL:
        reason = {
            "code": "review_all",
            "severity": "info",
            "message": "Policy: every case is reviewed.",
        }
        return RoutingDecision(Destination.REVIEW, Priority.NORMAL, [reason], policy.version, gate)
    reason = {
        "code": "confident_plausible",
        "severity": "info",
        "message": "All landmarks confident, no findings, radiograph in distribution.",
    }
    return RoutingDecision(Destination.RELEASED, None, [reason], policy.version, gate)


def _site_ood_reason(ood: OodGate, limit: float) -> dict:
    worst = max(ood.components.items(), key=lambda kv: kv[1].get("score", 0), default=None)
    which = f" (worst: {worst[0]})" if worst else ""
    return {
        "code": "out_of_distribution_site", "severity": "warning",
        "message": (f"The radiograph is unlike this site's onboarding cases (site OOD score "
                    f"{ood.score:.2f} > {limit:.2f}{which}); its calibration does not cover it."),
    }  # fmt: skip


def _risk_reasons(risk: RiskGate) -> list[dict]:
    pct = f"{risk.tolerated_risk:.0%}"
    if risk.threshold is None:
        return [{
            "code": "risk_not_certified", "severity": "info",
            "message": (f"{risk.n_calibration} calibration cases cannot certify a {pct} "
                        "unsafe-release risk: every case is reviewed."),
        }]  # fmt: skip
    if risk.case_risk > risk.threshold:
        return [{
            "code": "predicted_gross_error", "severity": "info",
            "message": (f"P(any landmark > 4 mm) = {risk.case_risk:.3f} > {risk.threshold:.3f}, "
                        f"the release threshold certified for {pct} tolerated risk."),
        }]  # fmt: skip
    return []
