"""The bundled v2 engine: integrity, its out-of-fold figures, error prediction and risk
control in the manifest, and the new outputs (case risk, per-landmark P(> 2 / 4 mm))."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, load_isbi_cases
from mahtqa.cephalometry.metrics import radial_errors_mm
from mahtqa.engine.data import read_gray
from mahtqa.engine.inference import LandmarkPredictor

BUNDLED_V2 = Path(__file__).resolve().parents[2] / "mahtqa/engine/bundled/mahtnet-v2.pt"
HAMEDAN = Path(__file__).resolve().parents[3] / "shared/data/hamedan-dev"


@pytest.fixture(scope="module")
def v2() -> LandmarkPredictor:
    return LandmarkPredictor.load(BUNDLED_V2, num_threads=2)


def test_bundle_integrity_and_the_honest_figures_it_carries():
    assert BUNDLED_V2.stat().st_size < 8 * 1024 * 1024
    digest = hashlib.sha256(BUNDLED_V2.read_bytes()).hexdigest()
    manifest = json.loads(BUNDLED_V2.with_suffix(".json").read_text())
    assert manifest["sha256"] == digest
    assert manifest["version"].startswith("2.")
    oof = manifest["metrics"]["out_of_fold"]
    assert oof["n_cases"] == 100  # every ISBI case predicted by a model that never saw it
    assert oof["mre_mm"] <= 1.2
    assert sorted(c for fold in manifest["crossval"]["folds"] for c in fold) == sorted(
        manifest["split"]["train"]
    )
    control = manifest["risk_control"]
    assert set(control["by_alpha"]) == {"0.01", "0.02", "0.05", "0.1"}
    cert = control["by_alpha"]["0.05"]
    assert cert["n"] == 100
    assert cert["unsafe_released"] == 0
    assert 0 < cert["unsafe_rate_upper"] < 0.05


def test_predictions_carry_case_risk_and_per_landmark_error_probabilities(v2, isbi_root):
    cases = load_isbi_cases(isbi_root, ["001", "050"])
    for case in cases:
        p = v2.predict(read_gray(case.image_path), spacing_mm=ISBI_SPACING_MM)
        assert 0.0 <= p.case_risk <= 1.0
        p2 = np.array(p.risk_details["p_over_2mm"])
        p4 = np.array(p.risk_details["p_over_4mm"])
        assert np.all(p4 <= p2 + 1e-9)  # a 4 mm miss is also a 2 mm miss
        assert p.case_risk == pytest.approx(1 - np.prod(1 - p4), abs=1e-3)
        conf = np.array([lm.confidence for lm in p.landmarks])
        assert conf == pytest.approx(1 - p2, abs=1e-3)
        assert len(p.risk_details["shape_residual_mm"]) == 7
        errors = radial_errors_mm(np.array(p.points()), case.mean, ISBI_SPACING_MM)
        assert errors.mean() < 1.5  # trained on these: a sanity check, not a figure


def test_a_landmark_moved_onto_the_wrong_bone_raises_the_case_risk(v2, isbi_root):
    """The shape residual sees a gross error even when the heatmap would not."""
    from mahtqa.engine.signals import case_signals

    case = load_isbi_cases(isbi_root, ["010"])[0]
    analysis = v2.analyse_batch([read_gray(case.image_path)])[0]
    good = v2.finish(analysis, ISBI_SPACING_MM)
    moved = analysis.canonical_points.copy()
    moved[3] += (0.0, 60.0)  # B 18 mm down the chin
    analysis.canonical_points = moved
    bad = v2.finish(analysis, ISBI_SPACING_MM)
    assert bad.case_risk > good.case_risk + 0.1
    signals = case_signals(analysis.features, moved, v2.shape_model.mean_shape, v2.pair_stats)
    assert signals[:, 5].argmax() == 3


@pytest.mark.skipif(not HAMEDAN.is_dir(), reason="the second hospital's dev set is not here")
def test_the_second_hospital_is_found_zero_shot(v2):
    """Never trained on; its stated spacing (0.136 mm) is only an estimate."""
    cases = load_isbi_cases(HAMEDAN)[:3]
    errs = []
    for case in cases:
        p = v2.predict(read_gray(case.image_path), spacing_mm=(0.136, 0.136))
        errs.append(radial_errors_mm(np.array(p.points()), case.mean, (0.136, 0.136)))
    assert np.mean(errs) < 2.5
