"""review_errors_mm: the AI's stored landmarks against a reviewer's final ones."""

from __future__ import annotations

import numpy as np

from mahtqa.cephalometry.metrics import review_errors_mm


def _rows(points):
    return [{"abbreviation": a, "x": x, "y": y} for a, (x, y) in points.items()]


def test_errors_in_mm_matched_by_abbreviation():
    before = _rows({"S": (10.0, 10.0), "N": (20.0, 10.0)})
    after = _rows({"N": (20.0, 14.0), "S": (13.0, 10.0)})  # other order
    errors = review_errors_mm(before, after, (0.5, 0.1))
    np.testing.assert_allclose(errors, [0.3, 2.0])


def test_a_missing_final_landmark_gives_none():
    assert review_errors_mm(_rows({"S": (1.0, 1.0)}), _rows({"N": (1.0, 1.0)}), None) is None
    assert review_errors_mm([], [], None) is None
