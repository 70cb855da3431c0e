"""A site's landmark offset (issue 10, site onboarding): fitted in the face's own frame
from the engine's points and the reviewers' final ones, so it follows pose, size and
facing; a median, shrunk towards zero; leave-one-out for honest calibration labels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mahtqa.engine.site_offset import LandmarkOffset, face_frame, framable, leave_one_out

# A right-facing face in pixels (S, N, A, B, Pog, Me, Gn), S-N = 684 px.
FACE = np.array([[700, 800], [1380, 720], [1340, 1180], [1300, 1520], [1310, 1650],
                 [1250, 1760], [1290, 1720]], dtype=float)  # fmt: skip
# A site's convention: S drawn 2 % of S-N further along S->N, A 3 % deeper, Me 1 % back.
TRUE = np.zeros((7, 2))
TRUE[0] = (0.02, 0.0)
TRUE[2] = (0.0, 0.03)
TRUE[5] = (-0.01, 0.0)


def posed(points: np.ndarray, angle_deg: float, scale: float, shift, mirror: bool = False):
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    p = (points - FACE[0]) @ rot.T * scale + FACE[0] + np.asarray(shift, float)
    if mirror:
        p[:, 0] = 3000.0 - p[:, 0]
    return p


def site_cases(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Engine points of n poses of one face, and where the site's reviewers put them."""
    engine, final = [], []
    for _ in range(n):
        pose = (rng.uniform(-12, 12), rng.uniform(0.8, 1.2), rng.uniform(-80, 80, 2),
                bool(rng.integers(2)))  # fmt: skip
        engine.append(posed(FACE, *pose))
        final.append(posed(TRUE_FINAL, *pose))
    return np.array(engine), np.array(final)


def _true_final() -> np.ndarray:
    u, v, length = face_frame(FACE)
    return FACE + (TRUE[:, :1] * u + TRUE[:, 1:] * v) * length[:, None]


TRUE_FINAL = _true_final()


def test_the_frame_runs_along_s_n_and_towards_me_whatever_the_facing():
    u, v, length = face_frame(FACE)
    assert length[0] == pytest.approx(np.hypot(680, -80))
    assert u[0] @ (FACE[1] - FACE[0]) == pytest.approx(length[0])
    assert v[0] @ u[0] == pytest.approx(0.0, abs=1e-12)
    assert v[0] @ (FACE[5] - FACE[0]) > 0  # towards Me
    mu, mv, _ = face_frame(posed(FACE, 0, 1, (0, 0), mirror=True))
    assert mu[0][0] < 0  # a left-facing profile: S->N points left, v still towards Me
    assert mv[0] @ (posed(FACE, 0, 1, (0, 0), mirror=True)[5] - [3000 - 700, 800]) > 0


def test_a_site_convention_is_recovered_exactly_without_a_prior_in_any_pose():
    engine, final = site_cases(12, np.random.default_rng(1))
    offset = LandmarkOffset.fit(predicted=engine, final=final, prior_cases=0)
    assert np.asarray(offset.offsets) == pytest.approx(TRUE, abs=1e-9)
    assert offset.apply(engine) == pytest.approx(final, abs=1e-6)
    one = offset.apply(engine[3])
    assert one.shape == (7, 2)
    assert one == pytest.approx(final[3], abs=1e-6)


def test_the_offset_is_shrunk_by_n_over_n_plus_the_prior():
    engine, final = site_cases(30, np.random.default_rng(2))
    offset = LandmarkOffset.fit(predicted=engine, final=final)  # the default prior: 5 cases
    assert offset.n == 30
    assert offset.prior_cases == 5
    assert np.asarray(offset.offsets) == pytest.approx(TRUE * 30 / 35, abs=1e-9)


def test_a_gross_engine_failure_does_not_move_the_median():
    engine, final = site_cases(11, np.random.default_rng(3))
    clean = LandmarkOffset.fit(predicted=engine, final=final, prior_cases=0)
    broken = engine.copy()
    broken[4, 2] += (400.0, -300.0)  # A 50 mm off on one case
    robust = LandmarkOffset.fit(predicted=broken, final=final, prior_cases=0)
    assert np.asarray(robust.offsets)[2] == pytest.approx(np.asarray(clean.offsets)[2], abs=0.02)
    assert abs(np.asarray(robust.offsets)[2]).max() < 0.05  # a mean would move 0.06 S-N


def test_leave_one_out_corrects_each_case_by_the_others_only():
    engine, final = site_cases(8, np.random.default_rng(4))
    final = final.copy()
    final[0, 2] += (60.0, 0.0)  # the first case's reviewer disagrees with the rest
    loo = leave_one_out(predicted=engine, final=final, prior_cases=5)
    others = LandmarkOffset.fit(predicted=engine[1:], final=final[1:], prior_cases=5)
    assert loo[0] == pytest.approx(others.apply(engine[0]))
    everyone = LandmarkOffset.fit(predicted=engine, final=final, prior_cases=5)
    assert not np.allclose(loo[0], everyone.apply(engine[0]))


def test_round_trip_and_refusals():
    engine, final = site_cases(5, np.random.default_rng(5))
    offset = LandmarkOffset.fit(predicted=engine, final=final)
    again = LandmarkOffset.from_dict(offset.to_dict())
    assert again.n == 5
    assert np.asarray(again.offsets) == pytest.approx(np.asarray(offset.offsets), abs=1e-6)
    with pytest.raises(ValueError, match="7 rows"):
        LandmarkOffset.from_dict({"offsets": [[0, 0]] * 6, "n": 1, "prior_cases": 5})
    with pytest.raises(ValueError, match="landmark arrays"):
        LandmarkOffset.fit(predicted=engine[:, :6], final=final[:, :6])
    with pytest.raises(ValueError, match="same shape"):
        LandmarkOffset.fit(predicted=engine, final=final[:4])
    with pytest.raises(ValueError, match="non-finite"):
        LandmarkOffset.fit(predicted=np.where(engine == engine[0, 0, 0], np.nan, engine),
                           final=final)  # fmt: skip
    with pytest.raises(ValueError, match="prior_cases"):
        LandmarkOffset.fit(predicted=engine, final=final, prior_cases=-1)
    flat = FACE.copy()
    flat[1] = flat[0]
    with pytest.raises(ValueError, match="S and N coincide"):
        offset.apply(flat)
    line = FACE.copy()
    line[5] = line[0] + 2 * (line[1] - line[0])
    with pytest.raises(ValueError, match="Me lies on the S-N line"):
        face_frame(line)
    with pytest.raises(ValueError, match="at least two"):
        leave_one_out(predicted=engine[:1], final=final[:1])


@settings(max_examples=40, deadline=None)
@given(angle=st.floats(-30, 30), scale=st.floats(0.5, 2.0),
       dx=st.floats(-500, 500), dy=st.floats(-500, 500), mirror=st.booleans())  # fmt: skip
def test_the_correction_moves_with_the_face(angle, scale, dx, dy, mirror):
    engine, final = site_cases(6, np.random.default_rng(6))
    offset = LandmarkOffset.fit(predicted=engine, final=final, prior_cases=0)
    moved = posed(FACE, angle, scale, (dx, dy), mirror)
    expected = posed(TRUE_FINAL, angle, scale, (dx, dy), mirror)
    assert offset.apply(moved) == pytest.approx(expected, abs=1e-6)


def test_with_a_pixel_spacing_the_frame_is_physical():
    """Rows 0.15 mm, columns 0.1 mm: a physical convention is recovered from pixel points
    only when the frame is built in mm (a pixel frame is skewed by a tilted head)."""
    spacing = np.array([0.15, 0.10])  # (row_mm, col_mm)
    to_px = 1.0 / spacing[::-1]  # (x, y) mm -> px
    rng = np.random.default_rng(7)
    engine, final = site_cases(10, rng)  # in mm here
    engine_px, final_px = engine * to_px, final * to_px
    offset = LandmarkOffset.fit(predicted=engine_px, final=final_px, spacing_mm=spacing,
                                prior_cases=0)  # fmt: skip
    assert np.asarray(offset.offsets) == pytest.approx(TRUE, abs=1e-9)
    assert offset.apply(engine_px, spacing_mm=spacing) == pytest.approx(final_px, abs=1e-6)
    per_case = np.tile(spacing, (10, 1))
    again = leave_one_out(predicted=engine_px, final=final_px, spacing_mm=per_case, prior_cases=0)
    assert again == pytest.approx(final_px, abs=1e-6)  # the same convention in every case
    pixels = LandmarkOffset.fit(predicted=engine_px, final=final_px, prior_cases=0)
    assert not np.allclose(np.asarray(pixels.offsets), TRUE, atol=1e-3)
    with pytest.raises(ValueError, match="spacing must be positive"):
        offset.apply(engine_px, spacing_mm=(0.1, 0.0))
    with pytest.raises(ValueError, match="spacing must be positive"):
        offset.apply(engine_px, spacing_mm=np.ones((3, 2)))


def test_framable_marks_the_cases_without_a_frame():
    flat = FACE.copy()
    flat[1] = flat[0]
    assert framable(np.stack([FACE, flat, FACE])).tolist() == [True, False, True]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"n": 3, "prior_cases": 5}, "not a landmark offset"),
        ({"offsets": [[0, 0]] * 7, "prior_cases": 5}, "not a landmark offset"),
        ({"offsets": "north", "n": 3, "prior_cases": 5}, "not a landmark offset"),
        ({"offsets": [[0, 0]] * 6 + [[float("nan"), 0]], "n": 3, "prior_cases": 5}, "finite"),
        ({"offsets": [[0, 0]] * 7, "n": 0, "prior_cases": 5}, "n >= 1"),
        ({"offsets": [[0, 0, 0]] * 7, "n": 3, "prior_cases": 5}, "7 rows of 2"),
    ],
)
def test_a_stored_offset_that_is_not_one_is_refused(data, message):
    with pytest.raises(ValueError, match=message):
        LandmarkOffset.from_dict(data)
