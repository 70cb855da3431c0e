"""Statistical shape model: invariances, size term, serialisation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM
from mahtqa.cephalometry.shape_model import ShapeModel, centroid_size, points_to_mm


def test_points_to_mm_uses_row_and_column_spacing() -> None:
    pts = np.array([[10.0, 20.0]])
    np.testing.assert_allclose(points_to_mm(pts, (0.5, 2.0)), [[20.0, 10.0]])


@pytest.fixture(scope="module")
def model_and_case(isbi_cases, fit_without_case):
    return fit_without_case(isbi_cases, 0), points_to_mm(isbi_cases[0].mean, ISBI_SPACING_MM)


def test_distance_invariant_to_translation_and_rotation(model_and_case) -> None:
    model, q = model_and_case
    t = math.radians(8.0)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    moved = (q - q.mean(0)) @ rot.T + q.mean(0) + [40.0, -25.0]
    assert model.distance(moved) == pytest.approx(model.distance(q), rel=1e-6)


def test_size_term_flags_doubling(model_and_case) -> None:
    model, q = model_and_case
    c = q.mean(0)
    doubled = c + 2.0 * (q - c)
    assert model.shape_distance(doubled) == pytest.approx(model.shape_distance(q), rel=1e-6)
    assert abs(model.size_z(q)) < 3.0
    assert model.size_z(doubled) > 6.0
    assert centroid_size(doubled) == pytest.approx(2 * centroid_size(q))


def test_held_out_case_is_typical_and_reflection_is_not(model_and_case) -> None:
    model, q = model_and_case
    assert model.distance(q) < 6.0
    reflected = q * [-1.0, 1.0]
    assert model.shape_distance(reflected) > model.shape_distance(q) + 3.0


def test_json_round_trip(model_and_case) -> None:
    model, q = model_and_case
    restored = ShapeModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert restored.distance(q) == pytest.approx(model.distance(q))
    assert restored.n_training == 198
    with pytest.raises(ValueError, match="format"):
        ShapeModel.from_dict({**model.to_dict(), "format_version": 99})


def test_fit_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shapes"):
        ShapeModel.fit(np.zeros((2, 7, 2)))
