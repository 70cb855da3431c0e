"""The bundled model: integrity, accuracy on held-out cases, geometry invariance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, load_isbi_cases
from mahtqa.cephalometry.metrics import radial_errors_mm
from mahtqa.engine.data import read_gray
from mahtqa.engine.inference import EngineError, LandmarkPredictor

BUNDLED = Path(__file__).resolve().parents[2] / "mahtqa/engine/bundled/mahtnet-v1.pt"


def test_bundle_is_small_and_its_sha256_and_manifest_agree():
    assert BUNDLED.stat().st_size < 20 * 1024 * 1024
    digest = hashlib.sha256(BUNDLED.read_bytes()).hexdigest()
    assert BUNDLED.with_suffix(".sha256").read_text().split()[0] == digest
    manifest = json.loads(BUNDLED.with_suffix(".json").read_text())
    assert manifest["sha256"] == digest
    assert [lm["abbreviation"] for lm in manifest["landmarks"]] == [
        "S",
        "N",
        "A",
        "B",
        "Pog",
        "Me",
        "Gn",
    ]
    held_out = set(manifest["split"]["test"])
    assert held_out.isdisjoint(manifest["split"]["train"])
    assert held_out.isdisjoint(manifest["split"]["calibration"])
    assert manifest["metrics"]["test"]["mre_mm"] <= 1.5


def test_held_out_cases_are_found_within_clinical_tolerance(predictor, isbi_root):
    ids = predictor.manifest["split"]["test"][:4]
    cases = load_isbi_cases(isbi_root, ids)
    preds = predictor.predict_batch([read_gray(c.image_path) for c in cases])
    pts = np.array([[[lm.x, lm.y] for lm in p.landmarks] for p in preds])
    errors = radial_errors_mm(pts, np.stack([c.mean for c in cases]), ISBI_SPACING_MM)
    assert errors.mean() < 2.0
    assert np.median(errors) < 1.8
    for p in preds:
        assert [lm.abbreviation for lm in p.landmarks] == ["S", "N", "A", "B", "Pog", "Me", "Gn"]
        assert all(0.0 <= lm.confidence <= 1.0 for lm in p.landmarks)
        assert p.model_version == predictor.version


def test_results_come_back_in_the_input_pixel_grid(predictor, isbi_root):
    case = load_isbi_cases(isbi_root, predictor.manifest["split"]["test"][:1])[0]
    image = read_gray(case.image_path)
    base = np.array(predictor.predict(image).points())
    # the same radiograph at 2.5x the resolution (like the 0.1 mm originals)
    big = cv2.resize(image, (1600, 2000), interpolation=cv2.INTER_CUBIC)
    scaled = np.array(predictor.predict(big, spacing_mm=(0.12, 0.1209)).points()) / 2.5
    assert np.abs(scaled - base).max() < 2.0  # within 0.6 mm
    # padded on the right and bottom: coordinates stay put
    padded = np.zeros((900, 800), dtype=image.dtype)
    padded[:800, :640] = image
    moved = np.array(predictor.predict(padded).points())
    assert np.median(np.linalg.norm(moved - base, axis=1)) < 2.0


def test_batch_and_single_predictions_agree(predictor, isbi_root):
    cases = load_isbi_cases(isbi_root, predictor.manifest["split"]["test"][:2])
    images = [read_gray(c.image_path) for c in cases]
    batch = predictor.predict_batch(images)
    single = [predictor.predict(img) for img in images]
    for a, b in zip(batch, single, strict=True):
        assert np.allclose(a.points(), b.points(), atol=1e-3)


def test_weights_that_are_not_ours_are_refused(tmp_path):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a torch file")
    with pytest.raises(EngineError, match="not a MAHT-QA weights file"):
        LandmarkPredictor.load(bogus)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_cpu(predictor, isbi_root):
    gpu = LandmarkPredictor.load(BUNDLED, device="cuda")
    image = read_gray(load_isbi_cases(isbi_root, ["001"])[0].image_path)
    assert np.allclose(gpu.predict(image).points(), predictor.predict(image).points(), atol=0.5)
