"""Shared fixtures for the cephalometry tests (no Django needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, IsbiCase, load_isbi_cases
from mahtqa.cephalometry.shape_model import ShapeModel, points_to_mm

DATA_ROOT = Path(__file__).resolve().parents[2].parent / "shared/data/isbi2015-subset"


@pytest.fixture(scope="session")
def isbi_cases() -> list[IsbiCase]:
    if not (DATA_ROOT / "images").is_dir():
        pytest.skip(f"ISBI 2015 subset not found at {DATA_ROOT}")
    return load_isbi_cases(DATA_ROOT)


@pytest.fixture(scope="session")
def all_annotations(isbi_cases: list[IsbiCase]) -> np.ndarray:
    """(200, 7, 2): senior annotations of all cases, then junior ones."""
    return np.concatenate([[c.senior for c in isbi_cases], [c.junior for c in isbi_cases]])


def _fit_without_case(cases: list[IsbiCase], case_index: int) -> ShapeModel:
    """Shape model from both annotators of every case except one."""
    shapes = [
        points_to_mm(pts, ISBI_SPACING_MM)
        for i, c in enumerate(cases)
        if i != case_index
        for pts in (c.senior, c.junior)
    ]
    return ShapeModel.fit(np.stack(shapes))


@pytest.fixture(scope="session")
def fit_without_case() -> Callable[[list[IsbiCase], int], ShapeModel]:
    """Leave-one-case-out shape model fitting (fit is cheap: ~200 shapes)."""
    return _fit_without_case
