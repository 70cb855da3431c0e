"""The out-of-distribution guard flags radiographs unlike the training ones."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, load_isbi_cases
from mahtqa.engine.data import read_gray
from mahtqa.engine.phantoms import make_phantom


@pytest.fixture(scope="module")
def held_out(predictor, isbi_root):
    cases = load_isbi_cases(isbi_root, predictor.manifest["split"]["test"][:6])
    return [read_gray(c.image_path) for c in cases]


def _score(predictor, image, spacing=ISBI_SPACING_MM):
    return predictor.predict(image, spacing_mm=spacing).ood_score


def test_held_out_radiographs_from_the_training_device_pass(predictor, held_out):
    scores = [_score(predictor, img) for img in held_out]
    assert sum(s <= 1.0 for s in scores) >= 5, scores


def _contrast_curve(img):
    return (255 * (img / 255.0) ** 2.5).astype(np.uint8)


def _low_resolution(img):
    small = cv2.resize(img, (160, 200), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (640, 800), interpolation=cv2.INTER_LINEAR)


def _cropped(img):
    return img[150:650, 150:640]


def _noisy(img):
    noise = np.random.default_rng(0).normal(0, 25, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("alter", [_contrast_curve, _low_resolution, _cropped, _noisy])
def test_radiographs_altered_like_another_device_are_flagged(predictor, held_out, alter):
    flagged = [_score(predictor, alter(img)) > 1.0 for img in held_out[:3]]
    assert all(flagged)


def test_other_spacing_than_training_is_flagged(predictor, held_out):
    assert _score(predictor, held_out[0], spacing=(0.1, 0.1)) > 1.0


def test_phantoms_are_flagged(predictor):
    for seed in range(3):
        phantom = make_phantom(seed=seed)
        assert _score(predictor, phantom.image, phantom.spacing_mm) > 1.0


def test_every_prediction_carries_its_components(predictor, held_out):
    result = predictor.predict(held_out[0], spacing_mm=ISBI_SPACING_MM)
    assert {"histogram", "sharpness", "noise", "features", "shape", "field_of_view_mm"} <= set(
        result.ood_details
    )
    assert result.ood_score == max(c["score"] for c in result.ood_details.values())
