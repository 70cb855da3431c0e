"""ISBI loader and the inter-annotator check that validates loader and mm conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, load_isbi_cases, read_seven
from mahtqa.cephalometry.landmarks import ABBREVIATIONS
from mahtqa.cephalometry.metrics import radial_errors_mm, summarize_errors


def _write_case(root: Path, cid: str, folders: tuple[str, ...], offset: float = 0.0) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "images" / f"{cid}.png").write_bytes(b"")
    for folder in folders:
        d = root / "annotations" / folder
        d.mkdir(parents=True, exist_ok=True)
        lines = [f"{k + offset},{100 + k}" for k in range(1, 20)]
        (d / f"{cid}.txt").write_text("\n".join(lines) + "\n")


def test_read_seven_picks_isbi_lines_1_2_5_6_7_8_9(tmp_path: Path) -> None:
    _write_case(tmp_path, "001", ("senior",))
    pts = read_seven(tmp_path / "annotations/senior/001.txt")
    assert pts.shape == (7, 2)
    np.testing.assert_array_equal(pts[:, 0], [1, 2, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(pts[:, 1], [101, 102, 105, 106, 107, 108, 109])


def test_single_annotator_folder_is_used_for_both(tmp_path: Path) -> None:
    _write_case(tmp_path, "007", ("junior",))
    (case,) = load_isbi_cases(tmp_path, case_ids=[7])
    assert case.case_id == "007"
    np.testing.assert_array_equal(case.senior, case.junior)
    assert case.image_path == tmp_path / "images/007.png"


def test_two_annotators_and_mean(tmp_path: Path) -> None:
    _write_case(tmp_path, "002", ("senior",), offset=0.0)
    _write_case(tmp_path, "002", ("junior",), offset=4.0)
    (case,) = load_isbi_cases(tmp_path)
    np.testing.assert_allclose(case.junior[:, 0] - case.senior[:, 0], 4.0)
    np.testing.assert_allclose(case.mean[:, 0], case.senior[:, 0] + 2.0)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("\n".join(["1,2"] * 18), "expected 19"),
        ("\n".join(["1,2"] * 5 + ["abc"] + ["1,2"] * 13), "line 6"),
        ("\n".join(["1,2,3"] + ["1,2"] * 18), "line 1"),
        ("\n".join(["nan,2"] + ["1,2"] * 18), "non-finite"),
    ],
)
def test_malformed_annotation_names_the_file(tmp_path: Path, content: str, fragment: str) -> None:
    _write_case(tmp_path, "003", ("senior",))
    bad = tmp_path / "annotations/senior/003.txt"
    bad.write_text(content)
    with pytest.raises(ValueError, match=fragment) as info:
        load_isbi_cases(tmp_path)
    assert "003.txt" in str(info.value)


def test_missing_files_raise(tmp_path: Path) -> None:
    _write_case(tmp_path, "004", ("senior",))
    with pytest.raises(FileNotFoundError, match="005.png"):
        load_isbi_cases(tmp_path, case_ids=["005"])
    (tmp_path / "annotations/senior/004.txt").unlink()
    with pytest.raises(FileNotFoundError, match="004.txt"):
        load_isbi_cases(tmp_path)


def test_real_subset_loads_100_cases(isbi_cases) -> None:
    assert [c.case_id for c in isbi_cases] == [f"{i:03d}" for i in range(1, 101)]
    for c in isbi_cases:
        for pts in (c.senior, c.junior):
            assert pts.shape == (7, 2)
            assert np.all((pts >= 0) & (pts <= [640, 800]))


README_INTER_ANNOTATOR_MM = {
    "S": 0.86,
    "N": 1.42,
    "A": 3.37,
    "B": 3.03,
    "Pog": 0.92,
    "Me": 1.26,
    "Gn": 0.79,
}


def test_inter_annotator_error_matches_readme(isbi_cases) -> None:
    senior = np.stack([c.senior for c in isbi_cases])
    junior = np.stack([c.junior for c in isbi_cases])
    summary = summarize_errors(radial_errors_mm(senior, junior, ISBI_SPACING_MM))
    assert abs(summary["mre_mm"] - 1.66) < 0.1
    for abbr in ABBREVIATIONS:
        assert abs(summary["per_landmark_mre_mm"][abbr] - README_INTER_ANNOTATOR_MM[abbr]) < 0.05
    assert abs((100.0 - summary["sdr"]["2.0"]) - 24.6) < 0.5


def test_anisotropic_spacing_is_applied(isbi_cases) -> None:
    """Column spacing 0.3023 mm enlarges errors over an isotropic 0.3 mm."""
    senior = np.stack([c.senior for c in isbi_cases])
    junior = np.stack([c.junior for c in isbi_cases])
    exact = radial_errors_mm(senior, junior, ISBI_SPACING_MM)
    iso = radial_errors_mm(senior, junior, (0.3, 0.3))
    assert np.all(exact >= iso - 1e-12)
    assert exact.mean() > iso.mean()
