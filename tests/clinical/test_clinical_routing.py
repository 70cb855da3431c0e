"""The routing rule on plain data."""

from __future__ import annotations

from apps.clinical.routing import PolicyView, route

POLICY = PolicyView(1, 0.5, {"A": 0.3}, 1.0, "exceptions_only", ("high",))


def _lms(conf=0.9, a=0.9):
    names = ["S", "N", "A", "B", "Pog", "Me", "Gn"]
    return [{"abbreviation": n, "confidence": a if n == "A" else conf} for n in names]


def test_confident_plausible_in_distribution_is_released():
    d = route(landmarks=_lms(), findings=[], ood_score=0.4, policy=POLICY)
    assert (d.destination, d.priority) == ("released", None)
    assert d.reasons[0]["code"] == "confident_plausible"


def test_low_confidence_goes_to_normal_review_with_per_landmark_limits():
    d = route(landmarks=_lms(a=0.35), findings=[], ood_score=0.4, policy=POLICY)
    assert d.destination == "released"  # A's own limit is 0.3
    d = route(landmarks=_lms(conf=0.45), findings=[], ood_score=0.4, policy=POLICY)
    assert (d.destination, d.priority) == ("review", "normal")
    assert {r["landmark"] for r in d.reasons} == {"S", "N", "B", "Pog", "Me", "Gn"}


def test_out_of_distribution_is_never_released_even_when_confident():
    d = route(landmarks=_lms(), findings=[], ood_score=1.7, policy=POLICY)
    assert (d.destination, d.priority) == ("review", "normal")
    d = route(landmarks=_lms(), findings=[], ood_score=float("nan"), policy=POLICY)
    assert d.destination == "review"


def test_high_finding_is_urgent_and_warning_is_normal():
    high = {
        "code": "order_n_s",
        "severity": "high",
        "message": "N behind S",
        "landmarks": ["S", "N"],
    }
    warn = {"code": "shape_outlier", "severity": "warning", "message": "odd", "landmarks": []}
    assert (
        route(landmarks=_lms(), findings=[high], ood_score=0.1, policy=POLICY).priority == "urgent"
    )
    assert (
        route(landmarks=_lms(), findings=[warn], ood_score=0.1, policy=POLICY).priority == "normal"
    )


def test_review_all_policy():
    policy = PolicyView(2, 0.5, {}, 1.0, "all", ("high",))
    d = route(landmarks=_lms(), findings=[], ood_score=0.1, policy=policy)
    assert (d.destination, d.priority, d.policy_version) == ("review", "normal", 2)
