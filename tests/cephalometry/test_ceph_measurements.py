"""Measurements on hand-built geometry and on the real annotations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM
from mahtqa.cephalometry.measurements import MEASUREMENT_CODES, Measurement, compute_measurements


def _geometry() -> np.ndarray:
    """S at origin, N 10 px right; SNA 90 deg, SNB 80 deg, Y-axis 66 deg, N-Me 100 px."""
    s = (0.0, 0.0)
    n = (10.0, 0.0)
    a = (10.0, 10.0)
    b80 = math.radians(80.0)
    b = (10.0 - 20.0 * math.cos(b80), 20.0 * math.sin(b80))
    y66 = math.radians(66.0)
    gn = (30.0 * math.cos(y66), 30.0 * math.sin(y66))
    me = (10.0, 100.0)
    pog = (12.0, 60.0)
    return np.array([s, n, a, b, pog, me, gn])


def test_known_angles_and_distances_isotropic() -> None:
    ms = compute_measurements(_geometry(), spacing_mm=(1.0, 1.0))
    assert set(ms) == set(MEASUREMENT_CODES)
    assert ms["SNA"].value == pytest.approx(90.0)
    assert ms["SNB"].value == pytest.approx(80.0)
    assert ms["ANB"].value == pytest.approx(10.0)
    assert ms["Y-axis"].value == pytest.approx(66.0)
    assert ms["S-N"].value == pytest.approx(10.0)
    assert ms["N-Me"].value == pytest.approx(100.0)
    assert ms["S-N"].unit == "mm"
    assert ms["SNA"].unit == "deg"


def test_anisotropic_spacing_changes_distances_and_angles() -> None:
    row_mm, col_mm = 0.5, 0.25
    ms = compute_measurements(_geometry(), spacing_mm=(row_mm, col_mm))
    assert ms["S-N"].value == pytest.approx(10.0 * col_mm)
    assert ms["N-Me"].value == pytest.approx(100.0 * row_mm)
    assert ms["SNA"].value == pytest.approx(90.0)  # axis-aligned right angle survives
    b80 = math.radians(80.0)
    dx, dy = 20.0 * math.cos(b80) * col_mm, 20.0 * math.sin(b80) * row_mm
    assert ms["SNB"].value == pytest.approx(math.degrees(math.atan2(dy, dx)))
    assert ms["ANB"].value == pytest.approx(ms["SNA"].value - ms["SNB"].value)


def test_without_spacing_distances_are_pixels_without_norm() -> None:
    ms = compute_measurements(_geometry() * 3.0, spacing_mm=None)
    assert ms["S-N"].unit == "px"
    assert ms["S-N"].value == pytest.approx(30.0)
    assert ms["S-N"].z_score is None
    assert ms["S-N"].within_norm() is None
    assert ms["SNA"].value == pytest.approx(90.0)
    assert ms["SNA"].norm_mean == pytest.approx(82.0)


def test_z_score_and_within_norm() -> None:
    m = Measurement("SNA", "Angle S-N-A", 89.0, "deg", 82.0, 3.5)
    assert m.z_score == pytest.approx(2.0)
    assert m.within_norm() is False
    assert m.within_norm(2.0) is True
    assert m.as_dict()["z_score"] == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [np.zeros((6, 2)), np.full((7, 2), np.nan)])
def test_rejects_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="landmark array"):
        compute_measurements(bad, spacing_mm=(1.0, 1.0))


def test_real_cases_have_adult_like_means(isbi_cases) -> None:
    ms = [compute_measurements(c.mean, spacing_mm=ISBI_SPACING_MM) for c in isbi_cases]
    sna = np.mean([m["SNA"].value for m in ms])
    snb = np.mean([m["SNB"].value for m in ms])
    assert 75.0 < sna < 90.0
    assert 75.0 < snb < 90.0
    assert sna > snb  # ANB is positive on average (class I-dominated sample)
    sn = np.mean([m["S-N"].value for m in ms])
    assert 50.0 < sn < 80.0
