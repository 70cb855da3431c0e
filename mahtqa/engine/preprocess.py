"""Preprocessing shared by training and inference.

Coordinates follow the ISBI convention: x is the column, y the row, the origin is
the top-left corner of the top-left pixel, so pixel (i, j) covers [j, j+1) x [i, i+1).

Every input is intensity-normalised, then letterboxed into the *canonical frame*
(800 rows x 640 columns, the geometry of the training radiographs). The coarse
stage sees the canonical image downscaled by ``COARSE_SCALE``; the fine stage sees
crops of the canonical image. ``Frame`` records the exact affine mapping so that
results map back to the input's pixel grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CANON_H = 800
CANON_W = 640
COARSE_SCALE = 0.3
COARSE_H = round(CANON_H * COARSE_SCALE)  # 240
COARSE_W = round(CANON_W * COARSE_SCALE)  # 192
NORM_LOW_PCT = 0.5
NORM_HIGH_PCT = 99.5


@dataclass(frozen=True, slots=True)
class Frame:
    """canonical = scale * original + offset, per axis (corner-origin coordinates)."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    src_h: int
    src_w: int

    def to_canonical(self, points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, dtype=np.float64)
        out = np.empty_like(pts)
        out[..., 0] = pts[..., 0] * self.scale_x + self.offset_x
        out[..., 1] = pts[..., 1] * self.scale_y + self.offset_y
        return out

    def to_original(self, points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, dtype=np.float64)
        out = np.empty_like(pts)
        out[..., 0] = (pts[..., 0] - self.offset_x) / self.scale_x
        out[..., 1] = (pts[..., 1] - self.offset_y) / self.scale_y
        return out

    @property
    def content_fraction(self) -> float:
        """Share of the canonical frame covered by the image (the rest is padding)."""
        return (self.src_w * self.scale_x * self.src_h * self.scale_y) / (CANON_W * CANON_H)


def normalize_intensity(image: np.ndarray) -> np.ndarray:
    """Map the 0.5th..99.5th percentile of a 2D image to [0, 1] (float32, clipped)."""
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2D grayscale image, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("empty image")
    arr = arr.astype(np.float32, copy=False)
    step = max(1, int(np.sqrt(arr.size / 250_000)))
    sample = arr[::step, ::step]
    lo, hi = np.percentile(sample, [NORM_LOW_PCT, NORM_HIGH_PCT])
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo < 1e-6:
        return np.zeros(arr.shape, dtype=np.float32)
    return np.clip((arr - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def to_canonical(image: np.ndarray) -> tuple[np.ndarray, Frame]:
    """Letterbox a normalised image into the canonical frame (aspect kept, zero padding)."""
    h, w = image.shape
    s = min(CANON_H / h, CANON_W / w)
    new_w = max(1, min(CANON_W, round(w * s)))
    new_h = max(1, min(CANON_H, round(h * s)))
    interp = cv2.INTER_AREA if new_w < w else cv2.INTER_LINEAR
    if (new_w, new_h) == (w, h):
        resized = image.astype(np.float32, copy=False)
    else:
        resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    off_x = (CANON_W - new_w) // 2
    off_y = (CANON_H - new_h) // 2
    canvas = np.zeros((CANON_H, CANON_W), dtype=np.float32)
    canvas[off_y : off_y + new_h, off_x : off_x + new_w] = resized
    frame = Frame(new_w / w, new_h / h, float(off_x), float(off_y), h, w)
    return canvas, frame


def preprocess(image: np.ndarray) -> tuple[np.ndarray, Frame]:
    """Normalise and letterbox: the one entry point used by training and inference."""
    return to_canonical(normalize_intensity(image))


def coarse_input(canonical: np.ndarray) -> np.ndarray:
    """The coarse stage's input: the canonical image scaled by ``COARSE_SCALE``."""
    return cv2.resize(canonical, (COARSE_W, COARSE_H), interpolation=cv2.INTER_AREA)


def crop_at(canonical: np.ndarray, center: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` crop around ``center`` (x, y); returns (patch, top-left offset).

    The crop starts at an integer pixel, so ``patch_point + offset`` is exact; outside
    the canonical frame the patch is zero.
    """
    x0 = int(np.floor(center[0] - size / 2 + 0.5))
    y0 = int(np.floor(center[1] - size / 2 + 0.5))
    patch = np.zeros((size, size), dtype=np.float32)
    h, w = canonical.shape
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + size), min(h, y0 + size)
    if sx1 > sx0 and sy1 > sy0:
        patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = canonical[sy0:sy1, sx0:sx1]
    return patch, np.array([x0, y0], dtype=np.float64)
