"""Per-site OOD recalibration at onboarding (issue 10): the accepted site calibration
carries an OOD reference fitted from that site's own reviewed cases; routing for that
site scores radiographs against it, every other site keeps the training reference."""

from __future__ import annotations

import numpy as np
import pytest

from apps.accounts.choices import Role
from apps.clinical.choices import AuditAction
from apps.clinical.models import AuditEvent, Review, Site
from apps.clinical.services.pipeline import prediction_decide
from apps.clinical.services.policy import ood_gate, routing_policy_update
from apps.clinical.services.sites import site_calibrate, site_calibration_decide
from mahtqa.engine.types import EnginePrediction, LandmarkResult
from tests.clinical.review_factories import make_study
from tests.factories import PredictionFactory, landmark_rows

pytestmark = pytest.mark.django_db
# A second device as the engine's OOD details see it: every radiograph far from the
# training features (global score about 3.5), sharper and darker.
DEVICE = {"histogram": (0.60, 0.06), "sharpness": (-2.80, 0.18), "noise": (-6.40, 0.10),
          "mean": (0.41, 0.03), "contrast": (0.26, 0.01), "features": (15.2, 1.5)}  # fmt: skip


def details(rng, **override) -> dict:
    d = {"aspect_ratio": {"value": 1.247, "score": 0.02},
         "field_of_view_mm": {"value": 227.3, "score": 0.27},
         "shape": {"value": 2.0, "score": 0.3}}  # fmt: skip
    for name, (mu, sd) in DEVICE.items():
        d[name] = {"value": float(mu + sd * rng.standard_normal()), "score": 0.5}
    d["features"]["score"] = 3.5
    for name, value in override.items():
        d[name] = {"value": value, "score": 9.0}
    return d


def reviewed(site, mv, reviewer, *, ood, risk=0.02, outcome="accepted"):
    study = make_study(site=site, spacing_row_mm=0.1, spacing_col_mm=0.1, status="reviewed")
    before = landmark_rows(0.9, study=study)
    worst = max(c["score"] for c in ood.values())
    pred = PredictionFactory(study=study, model_version=mv, landmarks=before, case_risk=risk,
                             ood_score=worst, ood_details=ood)  # fmt: skip
    Review.objects.create(study=study, prediction=pred, reviewer=reviewer, outcome=outcome,
                          landmarks_before=before, landmarks_after=before)  # fmt: skip


def result(ood: dict, risk: float = 0.02) -> EnginePrediction:
    lms = [LandmarkResult(abbreviation=r["abbreviation"], name=r["name"], x=r["x"], y=r["y"],
                          confidence=0.9) for r in landmark_rows(0.9)]  # fmt: skip
    return EnginePrediction(landmarks=lms, ood_score=max(c["score"] for c in ood.values()),
                            ood_details=ood, case_risk=risk)  # fmt: skip


def decide(mv, site, ood, risk=0.02):
    _, _, _, decision = prediction_decide(
        result=result(ood, risk), spacing=(0.1, 0.1), width=2000, model_version=mv,
        shape_model=None, site=site,
    )  # fmt: skip
    return decision.as_dict()


def codes(decision: dict) -> list[str]:
    return [r["code"] for r in decision["reasons"]]


def test_an_onboarded_site_releases_its_typical_cases_and_still_flags_atypical_ones(
    bundled_model_v2, make_user, admin_user
):
    mv = bundled_model_v2
    site = Site.objects.create(key="site-hhhh", device="Planmeca ProMax")
    other = Site.objects.create(key="site-oooo", device="Other")
    rad = make_user(Role.RADIOLOGIST)
    routing_policy_update(user=None, tolerated_risk=0.1)
    rng = np.random.default_rng(10)
    for i in range(30):
        reviewed(site, mv, rad, ood=details(rng), risk=0.01 + i / 1000)
    # never fitted from: a rejected image of the site, nor another site's cases
    reviewed(site, mv, rad, ood=details(rng, features=60.0), outcome="rejected")
    for _ in range(30):
        reviewed(other, mv, rad, ood=details(rng, features=40.0, mean=0.7))

    typical = details(np.random.default_rng(77))
    before = decide(mv, site, typical)  # not onboarded yet: the training reference
    assert before["destination"] == "review"
    # (v2's global certificate cannot certify 10 %: every case is reviewed anyway)
    assert codes(before) == ["out_of_distribution", "risk_not_certified"]

    proposal = site_calibrate(site=site, user=admin_user)
    ood = proposal["ood"]
    assert ood["n"] == 30
    assert ood["limit"] >= 1.0
    assert ood["coverage"] == 0.9
    assert ood["loo_pass_rate"] >= 0.9
    assert proposal["ood_reference"]["centres"]["features"] == pytest.approx(15.2, abs=1.0)
    audit = AuditEvent.objects.get(action=AuditAction.SITE_CALIBRATE)
    assert audit.details["ood"]["limit"] == ood["limit"]
    site_calibration_decide(site=site, accept=True, user=admin_user)
    site.refresh_from_db()
    assert site.policy["ood_reference"]["n"] == 30

    d = decide(mv, site, typical)
    assert d["destination"] == "released"
    assert d["ood"]["source"] == "site-hhhh"
    assert d["ood"]["score"] <= 1.0
    assert d["ood"]["global_score"] == 3.5
    assert d["risk"]["source"] == "site-hhhh"

    inverted = details(np.random.default_rng(77), mean=0.59, features=28.0)
    d = decide(mv, site, inverted)
    assert d["destination"] == "review"
    assert codes(d) == ["out_of_distribution_site"]
    assert "(worst: features)" in d["reasons"][0]["message"]
    training_like = details(np.random.default_rng(77), features=5.8)
    assert codes(decide(mv, site, training_like)) == ["out_of_distribution_site"]
    # the site's risk threshold still applies after its OOD guard lets a case through
    assert codes(decide(mv, site, typical, risk=0.5)) == ["predicted_gross_error"]

    # another site is unaffected: the same typical radiograph is OOD for it
    d = decide(mv, other, typical)
    assert d["destination"] == "review"
    assert codes(d) == ["out_of_distribution", "risk_not_certified"]
    assert "ood" not in d
    assert d["risk"]["source"] == "global"


def test_no_site_reference_without_enough_cases_or_for_another_model(
    bundled_model_v2, make_user, admin_user, settings
):
    mv = bundled_model_v2
    site = Site.objects.create(key="site-few0", device="X")
    rad = make_user(Role.RADIOLOGIST)
    routing_policy_update(user=None, tolerated_risk=0.1)
    settings.MAHTQA_SITE_MIN_REVIEWED = 10
    rng = np.random.default_rng(3)
    for i in range(12):
        reviewed(site, mv, rad, ood=details(rng), risk=0.01 + i / 1000)
    proposal = site_calibrate(site=site, user=admin_user)
    assert proposal["ood_reference"] is None
    assert proposal["ood"]["note"] == "12 cases with OOD details; 20 needed"
    site_calibration_decide(site=site, accept=True, user=admin_user)
    site.refresh_from_db()
    typical = details(np.random.default_rng(4))
    assert codes(decide(mv, site, typical))[0] == "out_of_distribution"  # the global guard

    settings.MAHTQA_SITE_OOD_MIN_CASES = 10
    site_calibrate(site=site, user=admin_user)
    site_calibration_decide(site=site, accept=True, user=admin_user)
    site.refresh_from_db()
    assert site.policy["ood_reference"]["n"] == 12
    gate = ood_gate(manifest=mv.manifest, ood_details=typical, ood_score=3.5, site=site)
    assert gate.source == "site-few0"
    assert gate.score <= 1.0
    other_model = {**mv.manifest, "sha256": "0" * 64}  # bound to the model it was fitted on
    assert ood_gate(manifest=other_model, ood_details=typical, ood_score=3.5, site=site) is None
