"""Gross-error signals that look at the landmarks together, not at one heatmap.

- ``landmark_residuals``: for each landmark, where the other six put it. The mean
  shape (Procrustes, from the training cases) is fitted to the other six points by a
  similarity transform; the residual is the distance in mm between the landmark and
  that prediction. One landmark on the wrong bone stands out even when its heatmap
  is sharp.
- ``pair_z``: each pairwise distance against the training cases' mean and SD; a
  landmark's score is its worst pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM
from mahtqa.cephalometry.landmarks import N_LANDMARKS
from mahtqa.cephalometry.shape_model import points_to_mm


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares s, R, t with dst ~ s * src @ R.T + t (Umeyama, no reflection)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    fix = np.diag([1.0, d])
    rot = u @ fix @ vt
    var = float((a**2).sum()) or 1e-12
    scale = float((sig * np.diag(fix)).sum() / var)
    return scale, rot, mu_d - scale * mu_s @ rot.T


def landmark_residuals(points_mm: np.ndarray, mean_shape: np.ndarray) -> np.ndarray:
    """(7,) mm: each landmark's distance from where the mean shape, fitted to the other
    six landmarks, puts it."""
    pts = np.asarray(points_mm, dtype=float)
    out = np.empty(N_LANDMARKS)
    for k in range(N_LANDMARKS):
        rest = np.arange(N_LANDMARKS) != k
        s, rot, t = _similarity(mean_shape[rest], pts[rest])
        expected = s * mean_shape[k] @ rot.T + t
        out[k] = float(np.linalg.norm(pts[k] - expected))
    return out


@dataclass(frozen=True)
class PairStats:
    mean: np.ndarray  # (7, 7) mm
    sd: np.ndarray

    @classmethod
    def fit(cls, shapes_mm: np.ndarray) -> PairStats:
        d = _pairs(np.asarray(shapes_mm, dtype=float))
        return cls(d.mean(axis=0), d.std(axis=0, ddof=1) + np.eye(N_LANDMARKS) + 1e-6)

    def pair_z(self, points_mm: np.ndarray) -> np.ndarray:
        """(7,) each landmark's largest |z| over its six distances to the others."""
        z = np.abs(_pairs(np.asarray(points_mm, dtype=float)[None])[0] - self.mean) / self.sd
        np.fill_diagonal(z, 0.0)
        return z.max(axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "sd": self.sd.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairStats:
        return cls(np.asarray(data["mean"], dtype=float), np.asarray(data["sd"], dtype=float))


def case_signals(
    features: np.ndarray,
    canonical_points: np.ndarray,
    mean_shape: np.ndarray,
    pairs: PairStats,
    *,
    view_spread_mm: np.ndarray | None = None,
    far_mass: np.ndarray | None = None,
) -> np.ndarray:
    """(7, 7): the engine's per-landmark features, then the shape residual (mm) and the
    worst pairwise z, from the landmarks in the canonical frame (the training geometry,
    ``CANON_MM`` per pixel); (7, 9) with the test-time views' spread (mm) and the fine
    heat's far mass last, for an engine whose manifest asks for views. crossval and the
    engine both call this."""
    mm = points_to_mm(canonical_points, ISBI_SPACING_MM)
    cols = [features, landmark_residuals(mm, mean_shape), pairs.pair_z(mm)]
    if (view_spread_mm is None) != (far_mass is None):
        raise ValueError("the views' spread and the far mass come together")
    if view_spread_mm is not None:
        cols += [np.asarray(view_spread_mm, dtype=float), np.asarray(far_mass, dtype=float)]
    return np.column_stack(cols)


def _pairs(shapes: np.ndarray) -> np.ndarray:
    diff = shapes[:, :, None, :] - shapes[:, None, :, :]
    return np.linalg.norm(diff, axis=-1)
