"""Risk-controlled routing (issue 10): the case's P(any landmark > 4 mm) against the
threshold the model's calibration certifies for the admin's tolerated risk."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.clinical.routing import PolicyView, RiskGate, route
from apps.clinical.services.policy import (
    risk_certificate,
    risk_gate,
    routing_policy_current,
    routing_policy_update,
)
from apps.models.services import model_version_activate
from tests.factories import ModelVersionFactory

POLICY = PolicyView(1, 0.5, {"A": 0.3}, 1.0, "exceptions_only", ("high",))
CONTROL = {
    "method": "Learn-then-Test, fixed sequence; Clopper-Pearson bound",
    "delta": 0.05,
    "evaluated_on": "100 ISBI cases, 5-fold out-of-fold",
    "by_alpha": {
        "0.01": {"threshold": None, "n": 100, "released": 0, "unsafe_released": 0,
                 "release_rate": 0.0, "unsafe_rate_upper": 0.0295},
        "0.05": {"threshold": 0.08, "n": 100, "released": 58, "unsafe_released": 0,
                 "release_rate": 0.58, "unsafe_rate_upper": 0.0295},
    },
}  # fmt: skip


def _lms(conf=0.2):
    return [
        {"abbreviation": a, "confidence": conf} for a in ("S", "N", "A", "B", "Pog", "Me", "Gn")
    ]


def test_a_low_risk_case_is_released_whatever_its_raw_confidences():
    gate = RiskGate(case_risk=0.03, threshold=0.08, tolerated_risk=0.05, n_calibration=100)
    d = route(landmarks=_lms(0.2), findings=[], ood_score=0.3, policy=POLICY, risk=gate)
    assert d.destination == "released"
    assert [r["code"] for r in d.reasons] == ["confident_plausible"]


def test_a_high_risk_case_goes_to_review_naming_the_signal():
    gate = RiskGate(case_risk=0.21, threshold=0.08, tolerated_risk=0.05, n_calibration=100)
    d = route(landmarks=_lms(0.99), findings=[], ood_score=0.3, policy=POLICY, risk=gate)
    assert d.destination == "review"
    assert d.priority == "normal"
    assert d.reasons[0]["code"] == "predicted_gross_error"
    assert "P(any landmark > 4 mm) = 0.210 > 0.080" in d.reasons[0]["message"]


def test_an_uncertified_risk_reviews_everything_and_ood_still_applies():
    gate = RiskGate(case_risk=0.0, threshold=None, tolerated_risk=0.01, n_calibration=100)
    d = route(landmarks=_lms(), findings=[], ood_score=0.3, policy=POLICY, risk=gate)
    assert [r["code"] for r in d.reasons] == ["risk_not_certified"]
    ok = RiskGate(case_risk=0.01, threshold=0.08, tolerated_risk=0.05, n_calibration=100)
    d = route(landmarks=_lms(), findings=[], ood_score=3.0, policy=POLICY, risk=ok)
    assert [r["code"] for r in d.reasons] == ["out_of_distribution"]


@pytest.mark.django_db
def test_the_gate_follows_the_policy_and_the_model():
    policy = routing_policy_current()
    manifest = {"risk_control": CONTROL}
    gate = risk_gate(policy=policy, manifest=manifest, case_risk=0.05)
    assert gate == RiskGate(0.05, 0.08, 0.05, 100)
    assert risk_gate(policy=policy, manifest={}, case_risk=0.05) is None  # v1: no error model
    assert risk_gate(policy=policy, manifest=manifest, case_risk=None) is None
    strict = routing_policy_update(user=None, tolerated_risk=0.01)
    assert risk_gate(policy=strict, manifest=manifest, case_risk=0.0).threshold is None
    raw = routing_policy_update(user=None, routing_mode="raw_thresholds")
    assert risk_gate(policy=raw, manifest=manifest, case_risk=0.05) is None
    assert risk_certificate(manifest=manifest, tolerated_risk=0.02) is None


@pytest.mark.django_db
def test_an_unknown_tolerated_risk_or_mode_is_refused():
    from apps.core.errors import InvalidInput

    with pytest.raises(InvalidInput) as exc:
        routing_policy_update(user=None, tolerated_risk=0.07, routing_mode="yolo")
    assert set(exc.value.details) == {"tolerated_risk", "routing_mode"}


@pytest.mark.django_db
def test_the_thresholds_page_shows_the_expected_release_and_the_bound(admin_client_):
    mv = ModelVersionFactory(manifest={"name": "maht-net", "risk_control": CONTROL})
    model_version_activate(model_version=mv, user=admin_client_.user)
    html = admin_client_.get(reverse("clinical:thresholds")).content.decode()
    in_force = html.split("data-risk-in-force>")[1].split("</p>")[0]
    assert "<strong data-release-rate>0.58</strong>" in in_force
    assert "<strong data-bound>0.030</strong>" in in_force  # 0 of 100: 1 - 0.05 ** (1/100)
    assert "0 unsafe of 58 released" in in_force
    assert "none (review all)" in html  # 1 % cannot be certified with 100 cases
