"""A site's own OOD reference (issue 10, site onboarding) on synthetic OOD details with
known answers: centres and shrunk sds, the leave-one-out limit, what passes and what
stays out of distribution, and the components it does not recalibrate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mahtqa.engine.ood import (
    ASPECT_TOLERANCE,
    SITE_MIN_CASES,
    SITE_PRIOR_CASES,
    Z_LIMIT,
    SiteOodReference,
    _site_moments,
    _site_raw,
)

# The training reference's sds (as OodReference.spreads() gives them) and a second
# device whose radiographs are sharper-edged, darker and far away in feature space.
PRIOR = {"histogram": 0.1, "sharpness": 0.07, "noise": 0.7, "mean": 0.065, "contrast": 0.022,
         "features": 0.65}  # fmt: skip
SITE = {"histogram": (0.60, 0.06), "sharpness": (-2.80, 0.18), "noise": (-6.40, 0.10),
        "mean": (0.41, 0.03), "contrast": (0.26, 0.01), "features": (15.2, 1.5)}  # fmt: skip


def case(rng=None, *, shape_score=0.5, **override) -> dict:
    """OOD details as the engine stores them, drawn from the second device's spread."""
    rng = rng or np.random.default_rng(0)
    d = {"aspect_ratio": {"value": 1.247, "score": 0.02},
         "field_of_view_mm": {"value": 227.3, "score": 0.27},
         "shape": {"value": 3.5 * shape_score, "score": shape_score}}  # fmt: skip
    for name, (mu, sd) in SITE.items():
        d[name] = {"value": float(mu + sd * rng.standard_normal()), "score": 3.0}
    for name, value in override.items():
        d[name] = {"value": value, "score": 9.9}
    return d


def site_cases(n=30, seed=1) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [case(rng) for _ in range(n)]


def test_centres_are_the_site_means_and_sds_are_shrunk_towards_training():
    cases = [case(features=10.0 + (1 if i % 2 else -1)) for i in range(20)]  # mean 10, SS 20
    ref = SiteOodReference.fit(details=cases, prior_sd={**PRIOR, "features": 2.0})
    assert ref.centres["features"] == pytest.approx(10.0)
    # (k * 2^2 + 20) / (k + n - 1) with k = 5, n = 20
    assert ref.scales["features"] == pytest.approx(math.sqrt((5 * 4 + 20) / 24) + 1e-3)
    no_prior = SiteOodReference.fit(details=cases, prior_sd=PRIOR, prior_cases=0)
    assert no_prior.scales["features"] == pytest.approx(math.sqrt(20 / 19) + 1e-3)
    heavy = SiteOodReference.fit(details=cases, prior_sd={**PRIOR, "features": 2.0},
                                 prior_cases=1e6)  # fmt: skip
    assert heavy.scales["features"] == pytest.approx(2.0, abs=2e-3)
    # geometry: centred on the site's (log) value, with the training reference's tolerance
    assert ref.centres["aspect_ratio"] == pytest.approx(math.log(1.247))
    assert ref.scales["aspect_ratio"] == pytest.approx(ASPECT_TOLERANCE)


def test_the_limit_is_the_leave_one_out_quantile_and_never_below_one():
    cases = site_cases(30)
    ref = SiteOodReference.fit(details=cases, prior_sd=PRIOR)
    rank = math.ceil(31 * 0.9)  # the 28th smallest of 30
    assert ref.limit == pytest.approx(max(1.0, ref.loo_scores[rank - 1]), abs=1e-3)
    assert ref.limit >= 1.0
    # each LOO score is the held-out case against a reference fitted without it
    expected = []
    for i in range(30):
        centres, scales = _site_moments(cases[:i] + cases[i + 1 :], PRIOR, SITE_PRIOR_CASES)
        expected.append(round(max(_site_raw(cases[i], centres, scales).values()), 3))
    assert ref.loo_scores == sorted(expected)
    assert max(expected) > ref.loo_scores[0]  # not all equal: the check can fail
    # three site cases wild in three different components (8 site sds): the 28th
    # smallest LOO score is the least wild of them, so the limit rises above 1
    wild = site_cases(30, seed=5)
    for i, name in enumerate(("sharpness", "mean", "contrast")):
        wild[i][name]["value"] = SITE[name][0] + 8 * SITE[name][1]
    loose = SiteOodReference.fit(details=wild, prior_sd=PRIOR)
    assert loose.limit > 1.0
    assert loose.limit == pytest.approx(loose.loo_scores[rank - 1], abs=1e-3)
    assert np.mean(np.array(loose.loo_scores) <= loose.limit + 1e-9) >= 0.9


def test_new_cases_from_the_site_pass_at_about_the_stated_coverage():
    ref = SiteOodReference.fit(details=site_cases(30, seed=2), prior_sd=PRIOR)
    rng = np.random.default_rng(99)
    fresh = [ref.score(case(rng))[0] for _ in range(400)]
    assert np.mean(np.array(fresh) <= 1.0) >= 0.9


def test_a_typical_site_case_passes_while_training_like_and_atypical_ones_do_not():
    ref = SiteOodReference.fit(details=site_cases(30), prior_sd=PRIOR)
    typical = case(np.random.default_rng(7))
    score, comps = ref.score(typical)
    assert score <= 1.0
    assert comps["features"]["reference"] == "site"
    assert comps["shape"]["reference"] == "training"
    # like the training radiographs, unlike this site's device: features at 5.8
    training_like, comps = ref.score(case(np.random.default_rng(7), features=5.8))
    assert training_like > 1.0
    assert max(comps, key=lambda k: comps[k]["score"]) == "features"
    inverted, _ = ref.score(case(np.random.default_rng(7), mean=0.59, features=28.0))
    assert inverted > 2.0
    blurred, comps = ref.score(case(np.random.default_rng(7), sharpness=-4.2))
    assert blurred > 1.0
    assert max(comps, key=lambda k: comps[k]["score"]) == "sharpness"
    squashed, comps = ref.score(case(np.random.default_rng(7), aspect_ratio=1.0))
    assert comps["aspect_ratio"]["score"] == pytest.approx(
        abs(math.log(1.0 / 1.247)) / ASPECT_TOLERANCE / ref.limit, abs=1e-3
    )
    assert squashed > 1.0


def test_the_shape_component_keeps_the_training_score_and_no_details_is_ood():
    ref = SiteOodReference.fit(details=site_cases(30), prior_sd=PRIOR)
    odd_shape = case(np.random.default_rng(7), shape_score=2.5)
    score, comps = ref.score(odd_shape)
    assert score == pytest.approx(2.5)
    assert comps["shape"] == {"value": pytest.approx(8.75), "score": 2.5, "reference": "training"}
    assert math.isnan(ref.score({})[0])
    # a component the site never had (no spacing at onboarding) keeps the training score
    no_fov = [{k: v for k, v in d.items() if k != "field_of_view_mm"} for d in site_cases(30)]
    blind = SiteOodReference.fit(details=no_fov, prior_sd=PRIOR)
    assert "field_of_view_mm" not in blind.centres
    odd_fov = case(np.random.default_rng(7))
    odd_fov["field_of_view_mm"] = {"value": 400.0, "score": 3.3}
    score, comps = blind.score(odd_fov)
    assert comps["field_of_view_mm"]["reference"] == "training"
    assert score == pytest.approx(3.3)


def test_too_few_cases_are_refused_and_the_reference_round_trips_through_json():
    with pytest.raises(ValueError, match="at least"):
        SiteOodReference.fit(details=site_cases(SITE_MIN_CASES - 1), prior_sd=PRIOR)
    with pytest.raises(ValueError, match="coverage"):
        SiteOodReference.fit(details=site_cases(20), prior_sd=PRIOR, coverage=0.99)
    ref = SiteOodReference.fit(details=site_cases(30), prior_sd=PRIOR)
    back = SiteOodReference.from_dict(json.loads(json.dumps(ref.to_dict())))
    probe = case(np.random.default_rng(3), features=19.0)
    assert back.score(probe) == ref.score(probe)
    assert ref.to_dict()["z_limit"] == Z_LIMIT
    assert back.n == 30
