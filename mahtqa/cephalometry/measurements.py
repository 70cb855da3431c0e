"""Cephalometric measurements from the seven landmarks (SNA, SNB, ANB, S-N, N-Me, Y-axis)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from mahtqa.cephalometry.landmarks import N_LANDMARKS, landmark_index

Unit = Literal["deg", "mm", "px"]
Spacing = tuple[float, float] | None

MEASUREMENT_CODES: tuple[str, ...] = ("SNA", "SNB", "ANB", "S-N", "N-Me", "Y-axis")
ANGLE_CODES: tuple[str, ...] = ("SNA", "SNB", "ANB", "Y-axis")
DISTANCE_CODES: tuple[str, ...] = ("S-N", "N-Me")

# code -> (name, norm mean, norm sd). Distance norms apply in mm only.
NORMS: dict[str, tuple[str, float, float]] = {
    "SNA": ("Angle S-N-A", 82.0, 3.5),
    "SNB": ("Angle S-N-B", 80.0, 3.0),
    "ANB": ("ANB difference (SNA - SNB)", 2.0, 2.0),
    "S-N": ("Anterior cranial base length S-N", 70.0, 3.0),
    "N-Me": ("Anterior face height N-Me", 117.5, 5.0),
    "Y-axis": ("Y-axis (angle between S-N and S-Gn)", 66.0, 3.0),
}


@dataclass(frozen=True)
class Measurement:
    """One measurement with its adult norm (``None`` when no norm applies, e.g. px units)."""

    code: str
    name: str
    value: float
    unit: Unit
    norm_mean: float | None = None
    norm_sd: float | None = None

    @property
    def z_score(self) -> float | None:
        """(value - norm mean) / norm sd, or ``None`` without a norm."""
        if self.norm_mean is None or not self.norm_sd:
            return None
        return (self.value - self.norm_mean) / self.norm_sd

    def within_norm(self, n_sd: float = 1.0) -> bool | None:
        """Whether the value lies within ``n_sd`` norm sds of the mean (``None`` without norm)."""
        z = self.z_score
        return None if z is None else abs(z) <= n_sd

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict including the z-score."""
        out = asdict(self)
        out["z_score"] = self.z_score
        return out


def _check_points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.shape != (N_LANDMARKS, 2):
        raise ValueError(f"expected landmark array of shape ({N_LANDMARKS}, 2), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("landmark array contains non-finite values")
    return pts


def to_physical(points: np.ndarray, spacing_mm: Spacing) -> np.ndarray:
    """Scale (x, y) px to mm with ``spacing_mm = (row_mm, col_mm)``; unchanged when None."""
    pts = np.asarray(points, dtype=float)
    if spacing_mm is None:
        return pts.copy()
    row_mm, col_mm = spacing_mm
    if row_mm <= 0 or col_mm <= 0:
        raise ValueError(f"pixel spacing must be positive, got {spacing_mm}")
    return pts * np.array([col_mm, row_mm], dtype=float)


def angle_at(vertex: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """Unsigned angle p-vertex-q in degrees (0-180).

    On Python floats: numpy costs microseconds per operation on two-element
    arrays, and a dataset validation runs this for every annotation."""
    vx, vy = float(vertex[0]), float(vertex[1])
    ux, uy = float(p[0]) - vx, float(p[1]) - vy
    wx, wy = float(q[0]) - vx, float(q[1]) - vy
    nu, nv = math.hypot(ux, uy), math.hypot(wx, wy)
    if nu == 0.0 or nv == 0.0:
        raise ValueError("angle undefined: two landmarks coincide")
    cos = (ux * wx + uy * wy) / (nu * nv)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def distance(p: np.ndarray, q: np.ndarray) -> float:
    """Euclidean distance between two points (in the units of the points)."""
    return math.hypot(float(p[0]) - float(q[0]), float(p[1]) - float(q[1]))


_MEASURED = tuple(landmark_index(k) for k in ("S", "N", "A", "B", "Me", "Gn"))


def _make(code: str, value: float, unit: Unit) -> Measurement:
    name, mean, sd = NORMS[code]
    if unit == "px":
        return Measurement(code, name, value, unit)
    return Measurement(code, name, value, unit, mean, sd)


def compute_measurements(points: np.ndarray, *, spacing_mm: Spacing) -> dict[str, Measurement]:
    """All measurements; angles in mm space (respects anisotropic spacing), px if unknown."""
    p = to_physical(_check_points(points), spacing_mm).tolist()
    s, n, a, b, me, gn = (p[i] for i in _MEASURED)
    dist_unit: Unit = "px" if spacing_mm is None else "mm"
    sna = angle_at(n, s, a)
    snb = angle_at(n, s, b)
    return {
        "SNA": _make("SNA", sna, "deg"),
        "SNB": _make("SNB", snb, "deg"),
        "ANB": _make("ANB", sna - snb, "deg"),
        "S-N": _make("S-N", distance(s, n), dist_unit),
        "N-Me": _make("N-Me", distance(n, me), dist_unit),
        "Y-axis": _make("Y-axis", angle_at(s, n, gn), "deg"),
    }
