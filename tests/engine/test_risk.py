"""Risk-controlled release (Learn-then-Test, Clopper-Pearson) on synthetic data with
known answers; error model and gross-error signals."""

from __future__ import annotations

import numpy as np
import pytest

from mahtqa.cephalometry.landmarks import N_LANDMARKS
from mahtqa.engine.crossval import make_folds
from mahtqa.engine.error_model import ErrorModel
from mahtqa.engine.risk import (
    clopper_pearson_upper,
    learn_then_test,
    risk_p_value,
    tradeoff_curve,
)
from mahtqa.engine.signals import PairStats, landmark_residuals


@pytest.mark.parametrize("n", [10, 30, 100, 1000])
def test_clopper_pearson_with_no_events_has_its_closed_form(n):
    assert clopper_pearson_upper(0, n, 0.95) == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-9)


def test_clopper_pearson_is_the_binomial_inversion():
    from scipy.stats import binom

    for k, n in ((1, 20), (5, 100), (12, 40)):
        upper = clopper_pearson_upper(k, n, 0.95)
        assert binom.cdf(k, n, upper) == pytest.approx(0.05, abs=1e-9)
    assert clopper_pearson_upper(7, 7) == 1.0
    assert clopper_pearson_upper(0, 0) == 1.0
    with pytest.raises(ValueError):
        clopper_pearson_upper(3, 2)


def test_risk_p_value_is_the_binomial_tail():
    assert risk_p_value(0, 100, 0.05) == pytest.approx(0.95**100)
    assert risk_p_value(1, 10, 0.1) == pytest.approx(0.9**10 + 10 * 0.1 * 0.9**9)


def test_the_threshold_stops_just_below_the_first_unsafe_case():
    scores = np.linspace(0, 1, 200)
    unsafe = scores > 0.8
    d = learn_then_test(scores, unsafe, alpha=0.05, delta=0.05)
    assert d.threshold == pytest.approx(scores[unsafe.argmax() - 1])
    assert d.unsafe_released == 0
    assert d.released == int((~unsafe).sum())
    assert d.release_rate == pytest.approx(d.released / 200)
    assert d.unsafe_rate_upper == pytest.approx(1 - 0.05 ** (1 / 200))


def test_too_few_cases_certify_nothing():
    """20 cases cannot show a 5 % risk at 95 %: 0.95**20 = 0.36 > 0.05."""
    scores = np.linspace(0, 1, 20)
    d = learn_then_test(scores, np.zeros(20, bool), alpha=0.05, delta=0.05)
    assert d.threshold is None
    assert d.released == 0
    assert d.tested[0]["p_value"] == pytest.approx(0.95**20)


def test_allowing_observed_unsafe_releases_goes_further():
    rng = np.random.default_rng(0)
    scores = rng.random(400)
    unsafe = rng.random(400) < scores * 0.05  # risk grows with the score
    strict = learn_then_test(scores, unsafe, alpha=0.05, delta=0.05)
    loose = learn_then_test(scores, unsafe, alpha=0.05, delta=0.05, max_unsafe_observed=None)
    assert loose.released >= strict.released
    assert strict.unsafe_released == 0


def test_learn_then_test_controls_the_risk_over_repeated_draws():
    """The guarantee itself: P(true risk of the chosen threshold > alpha) <= delta."""
    rng = np.random.default_rng(42)
    alpha, delta, n, violations, trials = 0.1, 0.1, 300, 0, 300

    def true_risk(t):  # scores ~ U(0,1), P(unsafe | s) = 0.3 s: R(t) = 0.15 t^2
        return 0.15 * min(max(t, 0.0), 1.0) ** 2

    for _ in range(trials):
        s = rng.random(n)
        u = rng.random(n) < 0.3 * s
        d = learn_then_test(s, u, alpha=alpha, delta=delta, max_unsafe_observed=None)
        if d.threshold is not None and true_risk(d.threshold) > alpha:
            violations += 1
    assert violations / trials <= delta + 0.03  # 0.03: the Monte-Carlo slack of 300 draws


def test_learn_then_test_rejects_bad_input():
    with pytest.raises(ValueError):
        learn_then_test(np.zeros(3), np.zeros(4, bool), alpha=0.05)
    with pytest.raises(ValueError):
        learn_then_test(np.zeros(3), np.zeros(3, bool), alpha=0.0)


def test_tradeoff_curve_runs_from_nothing_to_everything():
    s = np.arange(10.0)
    curve = tradeoff_curve(s, s >= 8, points=11)
    assert curve[-1]["release_rate"] == 1.0
    assert curve[-1]["unsafe_released"] == 2
    assert curve[0]["release_rate"] == pytest.approx(0.1)


def test_folds_cover_every_case_once_and_are_fixed():
    ids = [f"{i:03d}" for i in range(1, 101)]
    folds = make_folds(ids, 5)
    assert sorted(c for f in folds for c in f) == ids
    assert [len(f) for f in folds] == [20] * 5
    assert folds == make_folds(list(reversed(ids)), 5)
    with pytest.raises(ValueError):
        make_folds(ids, 1)


def _shape(rng):
    base = np.array([[0, 0], [70, -5], [68, 40], [62, 80], [64, 95], [55, 110], [62, 106]], float)
    return base + rng.normal(0, 1.5, base.shape)


def test_a_landmark_on_the_wrong_bone_has_the_largest_residual():
    from mahtqa.cephalometry.shape_model import ShapeModel

    rng = np.random.default_rng(3)
    shapes = np.stack([_shape(rng) for _ in range(40)])
    model = ShapeModel.fit(shapes)
    good = _shape(rng)
    bad = good.copy()
    bad[3] += (15, -20)  # B 25 mm off
    r_good, r_bad = (
        landmark_residuals(good, model.mean_shape),
        landmark_residuals(bad, model.mean_shape),
    )
    assert r_bad.argmax() == 3
    assert r_bad[3] > 15 > r_good.max()
    pairs = PairStats.fit(shapes)
    assert pairs.pair_z(bad).argmax() == 3
    assert PairStats.from_dict(pairs.to_dict()).pair_z(bad) == pytest.approx(pairs.pair_z(bad))


def test_error_model_ranks_gross_errors_and_round_trips():
    rng = np.random.default_rng(5)
    n = 300
    signals = np.abs(rng.normal(0.5, 0.3, (n * N_LANDMARKS, 7)))
    landmark = np.tile(np.arange(N_LANDMARKS), n)
    errors = 0.8 + 4 * signals[:, 5] + rng.normal(0, 0.3, n * N_LANDMARKS)  # residual drives it
    model = ErrorModel.fit(signals, landmark, errors)
    p4 = model.probability(signals, landmark, 4.0)
    assert p4[errors > 4].mean() > p4[errors < 2].mean() + 0.3
    again = ErrorModel.from_dict(model.to_dict())
    assert again.probability(signals[:7], landmark[:7], 2.0) == pytest.approx(
        model.probability(signals[:7], landmark[:7], 2.0)
    )
    case = signals[:7]
    assert model.case_risk(case) == pytest.approx(1 - np.prod(1 - p4[:7]))


def test_nested_routing_separates_annotator_disagreement_from_gross_errors():
    from mahtqa.engine.safety import nested

    rng = np.random.default_rng(3)
    cases = []
    for i in range(60):
        errors = rng.uniform(0.2, 1.5, N_LANDMARKS)
        apart = np.full(N_LANDMARKS, 1.0)
        nearest = errors.copy()
        if i % 10 == 0:  # the annotators 10 mm apart on A; the model near one of them
            errors[2], apart[2], nearest[2] = 5.0, 10.0, 0.5
        if i % 10 == 5:  # a real gross error: far from both
            errors[3], nearest[3] = 7.0, 6.5
        signals = np.abs(rng.normal(1.0, 0.3, (N_LANDMARKS, 7)))
        signals[:, 0] = errors  # coarse-fine distance tracks the error
        cases.append({
            "fold": i % 5, "errors_mm": errors.tolist(), "signals": signals.tolist(),
            "nearest_errors_mm": nearest.tolist(), "annotators_apart_mm": apart.tolist(),
        })  # fmt: skip
    out = nested(cases, alpha=0.1, delta=0.1)
    assert out["unsafe_cases"] == 12
    assert out["unsafe_annotators_apart"] == 6
    assert out["unsafe_cases_nearest_annotator"] == 6
    assert out["unsafe_released_nearest_annotator"] <= out["unsafe_released"]
    assert 0.0 <= out["case_auroc_4mm_nearest_annotator"] <= 1.0
    for c in cases:
        del c["nearest_errors_mm"]
    assert "unsafe_annotators_apart" not in nested(cases, alpha=0.1, delta=0.1)
