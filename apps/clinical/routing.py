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


@dataclass
class RoutingDecision:
    destination: str
    priority: str | None
    reasons: list[dict] = field(default_factory=list)
    policy_version: int = 0

    def as_dict(self) -> dict:
        return {
            "destination": self.destination,
            "priority": self.priority,
            "reasons": self.reasons,
            "policy_version": self.policy_version,
        }


def route(
    *, landmarks: list[dict], findings: list[dict], ood_score: float, policy: PolicyView
) -> RoutingDecision:
    """Decide where a prediction goes. Urgent beats normal; any reason means review."""
    urgent: list[dict] = []
    normal: list[dict] = []
    for f in findings:
        entry = {"code": f["code"], "message": f["message"], "severity": f["severity"]}
        (urgent if f["severity"] in policy.urgent_severities else normal).append(entry)
    for f in findings:
        if f["code"] == "spacing_unknown" and all(u["code"] != "spacing_unknown" for u in urgent):
            urgent.append({"code": "spacing_unknown", "message": f["message"], "severity": "high"})
    if not ood_score <= policy.max_ood_score:  # NaN counts as out of distribution
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
    for lm in landmarks:
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
    if urgent:
        return RoutingDecision(Destination.REVIEW, Priority.URGENT, urgent + normal, policy.version)
    if normal:
        return RoutingDecision(Destination.REVIEW, Priority.NORMAL, normal, policy.version)
    if policy.review_policy == ReviewPolicy.ALL:
        reason = {
            "code": "review_all",
            "severity": "info",
            "message": "Policy: every case is reviewed.",
        }
        return RoutingDecision(Destination.REVIEW, Priority.NORMAL, [reason], policy.version)
    reason = {
        "code": "confident_plausible",
        "severity": "info",
        "message": "All landmarks confident, no findings, radiograph in distribution.",
    }
    return RoutingDecision(Destination.RELEASED, None, [reason], policy.version)
