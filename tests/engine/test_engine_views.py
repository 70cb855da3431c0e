"""Test-time views: rotated, scaled fine crops mapped back to the canonical frame, their
spread as an eighth error signal, and an engine without "tta" in its manifest unchanged."""

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
        plain, _, _ = engine._fine([canonical], centres, np.zeros((1, 2)))
    assert view.shape == (1, 1, 7, 2)
    np.testing.assert_allclose(view[0, 0], plain[0, 0], atol=1e-4)


def test_a_rotated_scaled_view_maps_its_answer_back_near_the_landmark(predictor, image):
    plan = TTA_PLANS["views"]
    engine = _with_plan(predictor, plan)
    analysis = engine.analyse_batch([image])[0]
    assert analysis.view_spread_mm is not None and analysis.view_spread_mm.shape == (7,)
    # a wrong inverse map (rotation sign, scale or half-pixel) puts the answers
    # millimetres away; mapped right, the views agree within ~1 mm on a clean case
    assert float(np.median(analysis.view_spread_mm)) < 1.5
    assert len(engine.shifts) == len(plan["shifts"])


def test_the_views_spread_is_the_eighth_signal_and_an_error_model_takes_it(predictor, image):
    engine = _with_plan(predictor, TTA_PLANS["views"])
    a = engine.analyse_batch([image])[0]
    shapes = np.random.default_rng(0).normal(50, 5, size=(20, 7, 2))
    pairs = PairStats.fit(shapes)
    signals = case_signals(
        a.features, a.canonical_points, shapes.mean(0), pairs, view_spread_mm=a.view_spread_mm
    )
    assert signals.shape == (7, 8)
    np.testing.assert_allclose(signals[:, 7], a.view_spread_mm)
    rng = np.random.default_rng(1)
    many = np.abs(rng.normal(1, 0.5, size=(700, 8)))
    errors = np.where(many[:, 7] > 1.5, 5.0, 0.5)  # the eighth signal alone tells
    model = ErrorModel.fit(many, np.tile(np.arange(7), 100), errors)
    assert len(model.mean) == 8
    p2, p4 = model.probabilities(signals)
    assert p2.shape == (7,) and np.all(p4 <= p2)
    with pytest.raises(ValueError, match="takes 8 signals"):
        model.probabilities(signals[:, :7])
