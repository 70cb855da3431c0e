"""Preprocessing: the letterbox mapping is exact, normalisation is robust."""

from __future__ import annotations

import numpy as np
import pytest

from mahtqa.engine.heatmaps import decode, gaussian_targets
from mahtqa.engine.preprocess import CANON_H, CANON_W, crop_at, normalize_intensity, preprocess


def _dot_image(h: int, w: int, x: float, y: float) -> np.ndarray:
    """A smooth bright blob centred on (x, y) in corner-origin coordinates."""
    ys = np.arange(h)[:, None] + 0.5
    xs = np.arange(w)[None, :] + 0.5
    sigma = max(h, w) / 80
    return 1000 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)) + 10


def _centroid(img: np.ndarray) -> np.ndarray:
    ys = np.arange(img.shape[0])[:, None] + 0.5
    xs = np.arange(img.shape[1])[None, :] + 0.5
    w = np.clip(img - 0.05, 0, None)
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


@pytest.mark.parametrize(
    ("h", "w", "x", "y"),
    [
        (800, 640, 300.3, 410.7),
        (2400, 1935, 1200.2, 900.9),
        (1000, 1500, 700.5, 333.3),
        (333, 211, 100.1, 150.6),
    ],
)
def test_known_point_survives_round_trip_within_half_pixel(h, w, x, y):
    canonical, frame = preprocess(_dot_image(h, w, x, y))
    assert canonical.shape == (CANON_H, CANON_W)
    found = frame.to_original(_centroid(canonical))
    assert np.hypot(found[0] - x, found[1] - y) < 0.5


def test_frame_mapping_is_invertible_and_aspect_is_kept():
    _, frame = preprocess(np.random.default_rng(0).random((1000, 1500)))
    pts = np.array([[0.0, 0.0], [1500.0, 1000.0], [123.4, 567.8]])
    assert np.allclose(frame.to_original(frame.to_canonical(pts)), pts)
    assert frame.scale_x == pytest.approx(frame.scale_y, rel=0.01)
    # a wide image is padded top and bottom, not stretched
    assert frame.offset_y > 0
    assert frame.offset_x == 0


def test_normalisation_maps_percentiles_and_rejects_bad_shapes():
    img = np.linspace(0, 4095, 100 * 100).reshape(100, 100)
    out = normalize_intensity(img)
    assert out.dtype == np.float32
    assert out.min() == 0.0
    assert out.max() == 1.0
    assert normalize_intensity(np.full((10, 10), 7.0)).max() == 0.0  # flat image: no NaN
    with pytest.raises(ValueError, match="2D"):
        normalize_intensity(np.zeros((3, 4, 3)))
    with pytest.raises(ValueError, match="empty"):
        normalize_intensity(np.zeros((0, 4)))


def test_crop_offset_is_exact_and_pads_outside():
    canonical = np.arange(CANON_H * CANON_W, dtype=np.float32).reshape(CANON_H, CANON_W)
    patch, offset = crop_at(canonical, np.array([100.2, 50.7]), 16)
    x0, y0 = offset.astype(int)
    assert patch[3, 5] == canonical[y0 + 3, x0 + 5]
    corner, off = crop_at(canonical, np.array([2.0, 2.0]), 16)
    assert off[0] < 0
    assert corner[0, 0] == 0.0


def test_heatmap_decoding_is_sub_pixel():
    pts = np.array([[10.3, 20.8], [5.5, 5.5], [30.9, 2.2]])
    heat = gaussian_targets(pts, 40, 40, sigma=1.5)
    found, peak = decode(__import__("torch").from_numpy(heat)[None], radius=3)
    assert np.abs(found[0].numpy() - pts).max() < 0.15
    assert peak.min() > 0.6
