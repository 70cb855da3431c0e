"""Facing direction and mirroring."""

from __future__ import annotations

import numpy as np

from mahtqa.cephalometry.facing import (
    facing_direction,
    mirror_points,
    profile_facing,
    to_right_facing,
)


def test_real_cases_face_right_and_mirror_faces_left(isbi_cases) -> None:
    for c in isbi_cases:
        assert facing_direction(c.senior) == "right"
        assert profile_facing(c.junior) == "right"
        mirrored = mirror_points(c.mean, 640)
        assert facing_direction(mirrored) == "left"
        assert profile_facing(mirrored) == "left"


def test_mirror_is_involution_and_keeps_y() -> None:
    pts = np.array([[10.0, 5.0], [600.0, 7.0]])
    m = mirror_points(pts, 640)
    np.testing.assert_allclose(m, [[630.0, 5.0], [40.0, 7.0]])
    np.testing.assert_allclose(mirror_points(m, 640), pts)
    np.testing.assert_allclose(pts, [[10.0, 5.0], [600.0, 7.0]])  # input untouched


def test_to_right_facing(isbi_cases) -> None:
    pts = isbi_cases[0].mean
    same, mirrored = to_right_facing(pts, 640)
    assert mirrored is False
    np.testing.assert_allclose(same, pts)
    back, mirrored = to_right_facing(mirror_points(pts, 640), 640)
    assert mirrored is True
    np.testing.assert_allclose(back, pts)


def test_profile_facing_ignores_a_swapped_s_n_pair(isbi_cases) -> None:
    pts = isbi_cases[0].mean.copy()
    pts[[0, 1]] = pts[[1, 0]]
    assert facing_direction(pts) == "left"
    assert profile_facing(pts) == "right"
