"""Accuracy metrics against hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mahtqa.cephalometry.metrics import (
    auroc,
    case_grade,
    radial_errors_mm,
    reliability_table,
    sdr,
    summarize_errors,
)


def test_radial_error_anisotropic_by_hand() -> None:
    truth = np.zeros((7, 2))
    pred = truth.copy()
    pred[2] = (3.0, 4.0)  # dx = 3 columns, dy = 4 rows
    e = radial_errors_mm(pred, truth, (0.5, 2.0))  # row 0.5 mm, column 2.0 mm
    assert e.shape == (7,)
    assert e[2] == pytest.approx(math.sqrt((3 * 2.0) ** 2 + (4 * 0.5) ** 2))
    assert np.count_nonzero(e) == 1
    batch = radial_errors_mm(np.stack([pred, truth]), np.stack([truth, truth]), (0.5, 2.0))
    assert batch.shape == (2, 7)
    assert batch[0, 2] == pytest.approx(e[2])
    assert radial_errors_mm(pred, truth, None)[2] == pytest.approx(5.0)


def test_radial_error_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="must match"):
        radial_errors_mm(np.zeros((7, 2)), np.zeros((6, 2)), (1.0, 1.0))


def test_sdr_on_crafted_errors() -> None:
    errors = np.array([1.9, 2.0, 2.4, 2.6, 3.5, 5.0, 0.1])
    out = sdr(errors)
    assert list(out) == ["2.0", "2.5", "3.0", "4.0"]
    assert out["2.0"] == pytest.approx(200 / 7)  # strictly below: 1.9 and 0.1
    assert out["2.5"] == pytest.approx(400 / 7)
    assert out["3.0"] == pytest.approx(500 / 7)
    assert out["4.0"] == pytest.approx(600 / 7)


@pytest.mark.parametrize(
    ("worst", "grade"),
    [(0.2, "A"), (1.0, "A"), (1.01, "B"), (1.5, "B"), (2.0, "C"), (2.01, "D"), (9.0, "D")],
)
def test_case_grade_limits(worst: float, grade: str) -> None:
    errors = np.full(7, 0.1)
    errors[4] = worst
    assert case_grade(errors) == grade


def test_summarize_errors() -> None:
    errors = np.array([np.full(7, 0.5), np.full(7, 1.2), np.full(7, 3.0)])
    errors[2, 0] = 6.0
    s = summarize_errors(errors)
    assert s["n_images"] == 3
    assert s["mre_mm"] == pytest.approx(errors.mean())
    assert s["grades"] == {"A": 1, "B": 1, "C": 0, "D": 1}
    assert s["per_landmark_mre_mm"]["S"] == pytest.approx((0.5 + 1.2 + 6.0) / 3)
    assert s["per_landmark_mre_mm"]["N"] == pytest.approx((0.5 + 1.2 + 3.0) / 3)
    assert s["per_landmark_sdr"]["Gn"]["2.0"] == pytest.approx(200 / 3)
    assert s["sdr"]["4.0"] == pytest.approx(100 * 20 / 21)
    assert s["sd_mm"] == pytest.approx(errors.std(ddof=1))


def test_auroc_known_values() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == pytest.approx(1.0)
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == pytest.approx(0.0)
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == pytest.approx(0.5)
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # one tie between a positive and a negative counts half: (2 + 0.5) / 3
    assert auroc([0.3, 0.5, 0.5, 0.9], [0, 0, 1, 0]) == pytest.approx(1.5 / 3)
    assert math.isnan(auroc([0.1, 0.2], [1, 1]))


def test_reliability_table() -> None:
    conf = np.array([0.1, 0.15, 0.2, 0.8, 0.85, 0.9])
    err = np.array([3.0, 2.5, 1.0, 0.5, 0.4, 3.0])
    rows = reliability_table(conf, err, bins=2)
    assert [r["count"] for r in rows] == [3, 3]
    assert rows[0]["bin_lo"] == pytest.approx(0.1)
    assert rows[1]["bin_hi"] == pytest.approx(0.9)
    assert rows[0]["mean_error_mm"] == pytest.approx(6.5 / 3)
    assert rows[0]["share_over_threshold"] == pytest.approx(2 / 3)
    assert rows[1]["share_over_threshold"] == pytest.approx(1 / 3)
    assert rows[1]["mean_confidence"] == pytest.approx(0.85)
    empty = reliability_table(np.array([0.0, 1.0]), np.array([1.0, 1.0]), bins=4)
    assert [r["count"] for r in empty] == [1, 0, 0, 1]
    assert empty[1]["mean_error_mm"] is None
