"""Shared fixtures of the engine tests: the real data folder and the bundled model."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "isbi2015-subset"
BUNDLED = REPO / "mahtqa" / "engine" / "bundled" / "mahtnet-v1.pt"


@pytest.fixture(scope="session")
def isbi_root() -> Path:
    if not (DATA / "images").is_dir():
        pytest.skip(f"ISBI subset not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def predictor():
    from mahtqa.engine.inference import LandmarkPredictor

    return LandmarkPredictor.load(BUNDLED, num_threads=2)
