"""Statistical shape model of the seven landmarks: Procrustes + PPCA Mahalanobis + size term.

Shapes are in mm, right-facing. The shape term is a probabilistic-PCA Mahalanobis distance
of the Procrustes-aligned (translation, rotation, scale removed) shape: ``k`` modes with
their own variances plus an isotropic residual. Because Procrustes removes size, a separate
z-score of log centroid size is kept, so a shape scaled by 2 with unchanged spacing is
flagged. ``distance`` combines both as ``sqrt(d_shape**2 + z_size**2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mahtqa.cephalometry.landmarks import N_LANDMARKS
from mahtqa.cephalometry.measurements import to_physical

FORMAT_VERSION = 1
_EPS = 1e-12


def points_to_mm(points: np.ndarray, spacing_mm: tuple[float, float]) -> np.ndarray:
    """(x, y) px -> mm with ``spacing_mm = (row_mm, col_mm)``; works on (..., 2) arrays."""
    if spacing_mm is None:
        raise ValueError("points_to_mm needs a pixel spacing")
    return to_physical(points, spacing_mm)


def centroid_size(shape: np.ndarray) -> float:
    """Root of the summed squared distances of the points from their centroid."""
    centred = shape - shape.mean(axis=0)
    return float(np.sqrt((centred**2).sum()))


def _normalise(shape: np.ndarray) -> np.ndarray:
    centred = shape - shape.mean(axis=0)
    size = np.sqrt((centred**2).sum())
    if size < _EPS:
        raise ValueError("degenerate shape: all landmarks coincide")
    return centred / size


def _rotate_onto(shape: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotate a centred unit shape onto a centred unit target (no reflection)."""
    u, _, vt = np.linalg.svd(shape.T @ target)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag([1.0, d]) @ vt
    return shape @ rot


def _align(shape: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Full Procrustes fit to the unit mean, projected onto its tangent space."""
    rotated = _rotate_onto(_normalise(shape), mean)
    scaled = rotated / max(float((rotated * mean).sum()), _EPS)  # tangent projection
    return scaled


def generalised_procrustes(shapes: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Mean shape (centred, unit centroid size) of (n, 7, 2) shapes."""
    units = np.stack([_normalise(s) for s in shapes])
    mean = units[0]
    for _ in range(iterations):
        aligned = np.stack([_rotate_onto(u, mean) for u in units])
        new_mean = _rotate_onto(_normalise(aligned.mean(axis=0)), mean)
        if np.abs(new_mean - mean).max() < 1e-10:
            mean = new_mean
            break
        mean = new_mean
    return mean


@dataclass
class ShapeModel:
    """Fitted model; build with :meth:`fit`, persist with :meth:`to_dict`/:meth:`from_dict`."""

    mean_shape: np.ndarray  # (7, 2), centred, unit centroid size
    modes: np.ndarray  # (k, 14) orthonormal rows
    mode_variances: np.ndarray  # (k,)
    residual_variance: float  # per residual dimension
    residual_dof: int
    log_size_mean: float
    log_size_sd: float
    n_training: int

    @classmethod
    def fit(
        cls, shapes_mm: np.ndarray, n_modes: int = 5, regularisation: float = 0.05
    ) -> ShapeModel:
        """Fit to (n, 7, 2) right-facing shapes in mm; variances get a relative floor."""
        shapes = np.asarray(shapes_mm, dtype=float)
        if shapes.ndim != 3 or shapes.shape[1:] != (N_LANDMARKS, 2) or shapes.shape[0] < 3:
            raise ValueError(f"expected (n>=3, {N_LANDMARKS}, 2) shapes, got {shapes.shape}")
        mean = generalised_procrustes(shapes)
        vectors = np.stack([(_align(s, mean) - mean).ravel() for s in shapes])
        cov = vectors.T @ vectors / max(shapes.shape[0] - 1, 1)
        eigvals, eigvecs = np.linalg.eigh(cov)
        order = np.argsort(eigvals)[::-1]
        eigvals, eigvecs = np.clip(eigvals[order], 0.0, None), eigvecs[:, order]
        dof = 2 * N_LANDMARKS - 4  # translation (2), rotation (1), scale (1) removed
        k = int(min(n_modes, dof - 1, shapes.shape[0] - 1))
        residual_dof = dof - k
        residual_var = float(eigvals[k:dof].sum() / residual_dof)
        floor = regularisation * float(eigvals[:dof].mean())
        log_sizes = np.log([centroid_size(s) for s in shapes])
        return cls(
            mean_shape=mean,
            modes=eigvecs[:, :k].T.copy(),
            mode_variances=np.maximum(eigvals[:k], floor) + _EPS,
            residual_variance=max(residual_var, floor) + _EPS,
            residual_dof=residual_dof,
            log_size_mean=float(log_sizes.mean()),
            log_size_sd=max(float(log_sizes.std(ddof=1)), 1e-3),
            n_training=int(shapes.shape[0]),
        )

    def shape_distance(self, points_mm: np.ndarray) -> float:
        """PPCA Mahalanobis distance of the aligned shape (size removed)."""
        pts = np.asarray(points_mm, dtype=float)
        if pts.shape != (N_LANDMARKS, 2):
            raise ValueError(f"expected ({N_LANDMARKS}, 2) points, got {pts.shape}")
        v = (_align(pts, self.mean_shape) - self.mean_shape).ravel()
        scores = self.modes @ v
        residual = v - self.modes.T @ scores
        d2 = float((scores**2 / self.mode_variances).sum())
        d2 += float((residual**2).sum() / self.residual_variance)
        return float(np.sqrt(d2))

    def size_z(self, points_mm: np.ndarray) -> float:
        """z-score of log centroid size against the training shapes."""
        size = centroid_size(np.asarray(points_mm, dtype=float))
        return (float(np.log(max(size, _EPS))) - self.log_size_mean) / self.log_size_sd

    def distance(self, points_mm: np.ndarray) -> float:
        """Combined distance ``sqrt(shape_distance**2 + size_z**2)``."""
        return float(np.hypot(self.shape_distance(points_mm), self.size_z(points_mm)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (lists and floats only)."""
        return {
            "format_version": FORMAT_VERSION,
            "mean_shape": self.mean_shape.tolist(),
            "modes": self.modes.tolist(),
            "mode_variances": self.mode_variances.tolist(),
            "residual_variance": self.residual_variance,
            "residual_dof": self.residual_dof,
            "log_size_mean": self.log_size_mean,
            "log_size_sd": self.log_size_sd,
            "n_training": self.n_training,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShapeModel:
        """Inverse of :meth:`to_dict`; ``ValueError`` on an unknown format."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported shape model format: {data.get('format_version')!r}")
        model = cls(
            mean_shape=np.asarray(data["mean_shape"], dtype=float),
            modes=np.asarray(data["modes"], dtype=float).reshape(-1, 2 * N_LANDMARKS),
            mode_variances=np.asarray(data["mode_variances"], dtype=float),
            residual_variance=float(data["residual_variance"]),
            residual_dof=int(data["residual_dof"]),
            log_size_mean=float(data["log_size_mean"]),
            log_size_sd=float(data["log_size_sd"]),
            n_training=int(data["n_training"]),
        )
        if model.mean_shape.shape != (N_LANDMARKS, 2):
            raise ValueError("shape model mean_shape has the wrong shape")
        if model.modes.shape[0] != model.mode_variances.shape[0]:
            raise ValueError("shape model modes and variances disagree")
        return model
