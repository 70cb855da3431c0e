"""Plausibility rules: silent on real annotations, firing on crafted violations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mahtqa.cephalometry.facing import mirror_points
from mahtqa.cephalometry.isbi import ISBI_SPACING_MM
from mahtqa.cephalometry.landmarks import landmark_index
from mahtqa.cephalometry.measurements import compute_measurements
from mahtqa.cephalometry.plausibility import Finding, PlausibilityConfig, check_plausibility

ROW_MM, COL_MM = ISBI_SPACING_MM


def _codes(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.code for f in findings if severity is None or f.severity == severity}


@pytest.fixture(scope="module")
def model0(isbi_cases, fit_without_case):
    return fit_without_case(isbi_cases, 0)


@pytest.fixture
def case0(isbi_cases, model0):
    """A fresh copy of case 001 (mean of both annotators) and a model fitted without it."""
    return isbi_cases[0].mean.copy(), model0


def test_no_high_finding_on_real_annotations_leave_one_out(isbi_cases, fit_without_case) -> None:
    warnings = 0
    for i, case in enumerate(isbi_cases):
        model = fit_without_case(isbi_cases, i)
        for pts in (case.senior, case.junior):
            found = check_plausibility(
                pts, spacing_mm=ISBI_SPACING_MM, shape_model=model, image_width=640
            )
            assert not _codes(found, "high"), (case.case_id, [f.message for f in found])
            warnings += len(found)
    assert warnings <= 6  # at most a few shape warnings among 200 annotations


def test_default_ranges_contain_real_values_with_margin(all_annotations) -> None:
    margin = {"SNA": 3, "SNB": 3, "ANB": 3, "S-N": 5, "N-Me": 10, "Y-axis": 5}
    ranges = PlausibilityConfig().ranges
    for pts in all_annotations:
        for code, m in compute_measurements(pts, spacing_mm=ISBI_SPACING_MM).items():
            lo, hi = ranges[code]
            assert lo + margin[code] <= m.value <= hi - margin[code], (code, m.value)


def test_s_and_n_swapped(case0) -> None:
    pts, model = case0
    pts[[0, 1]] = pts[[1, 0]]
    found = check_plausibility(pts, spacing_mm=ISBI_SPACING_MM, shape_model=model)
    assert "order_n_s" in _codes(found, "high")


def test_me_moved_above_pog(case0) -> None:
    pts, model = case0
    me, pog = landmark_index("Me"), landmark_index("Pog")
    pts[me, 1] = pts[pog, 1] - 5.0 / ROW_MM
    found = check_plausibility(pts, spacing_mm=ISBI_SPACING_MM)
    assert "order_me_lowest" in _codes(found, "high")
    assert "order_gn_between" in _codes(found, "high")
    me_finding = next(f for f in found if f.code == "order_me_lowest")
    assert "Me" in me_finding.landmarks
    assert "mm" in me_finding.message


@pytest.mark.parametrize(
    ("first", "second", "code"), [("A", "B", "order_a_b"), ("B", "Pog", "order_b_pog")]
)
def test_vertical_order_swaps(case0, first: str, second: str, code: str) -> None:
    pts, _ = case0
    i, j = landmark_index(first), landmark_index(second)
    pts[[i, j]] = pts[[j, i]]
    assert code in _codes(check_plausibility(pts, spacing_mm=ISBI_SPACING_MM), "high")


def test_gn_far_anterior(case0) -> None:
    pts, _ = case0
    pts[landmark_index("Gn"), 0] += 10.0 / COL_MM
    assert "order_gn_between" in _codes(check_plausibility(pts, spacing_mm=ISBI_SPACING_MM))


def test_doubled_shape_with_same_spacing(case0) -> None:
    pts, model = case0
    c = pts.mean(0)
    found = check_plausibility(c + 2.0 * (pts - c), spacing_mm=ISBI_SPACING_MM, shape_model=model)
    assert "shape_outlier" in _codes(found, "high")
    assert not _codes(check_plausibility(pts, spacing_mm=ISBI_SPACING_MM, shape_model=model))


@pytest.mark.parametrize("name", ["B", "Pog", "Me", "Gn"])
@pytest.mark.parametrize("direction", [(1, 0), (-1, 0)])
def test_one_landmark_moved_15_mm(case0, name: str, direction: tuple[int, int]) -> None:
    pts, model = case0
    pts[landmark_index(name)] += np.array(direction) * 15.0 / np.array([COL_MM, ROW_MM])
    found = check_plausibility(pts, spacing_mm=ISBI_SPACING_MM, shape_model=model)
    assert "shape_outlier" in _codes(found, "high")


def test_spacing_unknown(case0) -> None:
    pts, model = case0
    found = check_plausibility(pts, spacing_mm=None, shape_model=model)
    assert _codes(found) == {"spacing_unknown"}  # S-N ~200 px is not range-checked as mm
    assert found[0].severity == "high"
    narrow = PlausibilityConfig(ranges={**PlausibilityConfig().ranges, "SNA": (60.0, 70.0)})
    assert "range_SNA" in _codes(check_plausibility(pts, spacing_mm=None, config=narrow))


def test_mirrored_real_cases_give_no_ordering_findings(isbi_cases, case0) -> None:
    _, model = case0
    for case in isbi_cases:
        mirrored = mirror_points(case.mean, 640)
        found = check_plausibility(mirrored, spacing_mm=ISBI_SPACING_MM, image_width=640)
        assert not any(code.startswith("order_") for code in _codes(found)), case.case_id
    mirrored0 = mirror_points(isbi_cases[0].mean, 640)
    found = check_plausibility(mirrored0, spacing_mm=ISBI_SPACING_MM, shape_model=model)
    assert not _codes(found, "high")


def test_range_message_is_specific(case0) -> None:
    pts, _ = case0
    sna = compute_measurements(pts, spacing_mm=ISBI_SPACING_MM)["SNA"].value
    cfg = PlausibilityConfig.from_dict({"ranges": {"SNA": [sna + 5, sna + 20]}})
    (finding,) = check_plausibility(pts, spacing_mm=ISBI_SPACING_MM, config=cfg)
    assert finding.code == "range_SNA"
    assert f"{sna:.1f}" in finding.message
    assert f"{sna + 5:g}" in finding.message
    assert finding.as_dict()["landmarks"] == ["S", "N", "A"]


def test_config_round_trip_and_overrides(case0) -> None:
    cfg = PlausibilityConfig()
    data = json.loads(json.dumps(cfg.as_dict()))
    assert PlausibilityConfig.from_dict(data) == cfg
    relaxed = PlausibilityConfig.from_dict({"severities": {"order_n_s": "warning"}})
    pts, _ = case0
    pts[[0, 1]] = pts[[1, 0]]
    found = check_plausibility(pts, spacing_mm=ISBI_SPACING_MM, config=relaxed)
    assert next(f for f in found if f.code == "order_n_s").severity == "warning"
    assert relaxed.severity("order_a_b") == "high"


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown_key": 1},
        {"severities": {"order_n_s": "critical"}},
        {"ranges": {"SNA": [90, 80]}},
        {"shape_warning_distance": 9, "shape_high_distance": 8},
    ],
)
def test_config_rejects_invalid(bad: dict) -> None:
    with pytest.raises(ValueError):
        PlausibilityConfig.from_dict(bad)
