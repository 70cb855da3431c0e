"""Test-time views: rotated, scaled fine crops mapped back to the canonical frame, their
spread and the fine heat's far mass as two more error signals, and an engine without
"tta" in its manifest unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mahtqa.engine.crossval import TTA_PLANS
from mahtqa.engine.data import read_gray
from mahtqa.engine.error_model import ErrorModel
from mahtqa.engine.inference import TTA_SHIFTS, LandmarkPredictor
from mahtqa.engine.preprocess import preprocess
from mahtqa.engine.signals import PairStats, case_signals


def _with_plan(base: LandmarkPredictor, plan: dict) -> LandmarkPredictor:
    return LandmarkPredictor(
        coarse=base.coarse, fine=base.fine, manifest={**base.manifest, "tta": plan}
    )


@pytest.fixture(scope="module")
def image(isbi_root):
    return read_gray(sorted((isbi_root / "images").glob("*.png"))[0])


def test_without_a_plan_the_engine_runs_the_five_shifts_and_no_views(predictor):
    assert predictor.views == []
    np.testing.assert_array_equal(predictor.shifts, TTA_SHIFTS)


def test_an_identity_view_on_pixel_aligned_centres_is_the_plain_crop(predictor, image):
    engine = _with_plan(predictor, {"views": [{"rotate_deg": 0.0, "scale": 1.0}]})
    canonical = preprocess(image)[0]
    half = engine.fine_crop / 2
    centres = np.array([[[200.0 + half, 300.0 + half + 7 * k] for k in range(7)]])
    with torch.inference_mode():
        view = engine._fine_views([canonical], centres)
        plain = engine._fine([canonical], centres, np.zeros((1, 2)))[0]
    assert view.shape == (1, 1, 7, 2)
    np.testing.assert_allclose(view[0, 0], plain[0, 0], atol=1e-4)


def test_a_rotated_scaled_view_maps_its_answer_back_near_the_landmark(predictor, image):
    plan = TTA_PLANS["views"]
    engine = _with_plan(predictor, plan)
    analysis = engine.analyse_batch([image])[0]
    assert analysis.view_spread_mm is not None
    assert analysis.view_spread_mm.shape == (7,)
    # a wrong inverse map (rotation sign, scale or half-pixel) puts the answers
    # millimetres away; mapped right, the views agree within ~1 mm on a clean case
    assert float(np.median(analysis.view_spread_mm)) < 1.5
    assert len(engine.shifts) == len(plan["shifts"])


def test_the_views_add_two_signals_and_an_error_model_takes_them(predictor, image):
    engine = _with_plan(predictor, TTA_PLANS["views"])
    a = engine.analyse_batch([image])[0]
    assert a.far_mass is not None
    assert np.all((a.far_mass >= 0) & (a.far_mass <= 1))
    shapes = np.random.default_rng(0).normal(50, 5, size=(20, 7, 2))
    pairs = PairStats.fit(shapes)
    signals = case_signals(
        a.features, a.canonical_points, shapes.mean(0), pairs,
        view_spread_mm=a.view_spread_mm, far_mass=a.far_mass,
    )  # fmt: skip
    assert signals.shape == (7, 9)
    np.testing.assert_allclose(signals[:, 7], a.view_spread_mm)
    np.testing.assert_allclose(signals[:, 8], a.far_mass)
    with pytest.raises(ValueError, match="come together"):
        case_signals(a.features, a.canonical_points, shapes.mean(0), pairs, far_mass=a.far_mass)
    rng = np.random.default_rng(1)
    many = np.abs(rng.normal(1, 0.5, size=(700, 9)))
    errors = np.where(many[:, 7] > 1.5, 5.0, 0.5)  # the eighth signal alone tells
    model = ErrorModel.fit(many, np.tile(np.arange(7), 100), errors)
    assert len(model.mean) == 9
    p2, p4 = model.probabilities(signals)
    assert p2.shape == (7,)
    assert np.all(p4 <= p2)
    ranked = model.probability(np.array([[1.0] * 7 + [0.2, 0.5], [1.0] * 7 + [4.0, 0.5]]),
                               np.zeros(2, int), 2.0)  # fmt: skip
    assert ranked[1] > ranked[0] + 0.5  # it learned the eighth signal
    with pytest.raises(ValueError, match="takes 9 signals"):
        model.probabilities(signals[:, :7])
    with pytest.raises(ValueError, match=r"expected \(n, 7\) or \(n, 9\)"):
        model.probabilities(signals[:, :8])


def test_far_mass_is_the_heat_share_beyond_the_radius():
    from mahtqa.engine.heatmaps import far_mass

    heat = torch.zeros(1, 1, 32, 32)
    heat[0, 0, 10, 10] = 3.0  # at the point
    heat[0, 0, 10, 25] = 1.0  # 15 px away
    point = torch.tensor([[[10.5, 10.5]]])
    assert float(far_mass(heat, point, radius=6)) == pytest.approx(0.25)
    assert float(far_mass(heat, point, radius=20)) == pytest.approx(0.0)
