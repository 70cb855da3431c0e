"""Which way the profile faces, and mirroring to a right-facing frame."""

from __future__ import annotations

from typing import Literal

import numpy as np

from mahtqa.cephalometry.landmarks import landmark_index

Facing = Literal["right", "left"]

_S = landmark_index("S")
_N = landmark_index("N")
_FACE = tuple(landmark_index(a) for a in ("A", "Pog"))


def facing_direction(points: np.ndarray) -> Facing:
    """``"right"`` when N lies to the right of S (x_N > x_S), else ``"left"``."""
    pts = np.asarray(points, dtype=float)
    return "right" if pts[_N, 0] > pts[_S, 0] else "left"


def profile_facing(points: np.ndarray) -> Facing:
    """Facing from A and Pog relative to the S-N midpoint.

    Symmetric in S and N, so a swapped S/N pair does not flip the answer; used by the
    plausibility rules, which must still detect such a swap. On the 200 ISBI annotations
    mean(x_A, x_Pog) lies at least 10 mm anterior to the S-N midpoint.
    """
    pts = np.asarray(points, dtype=float)
    face_x = (float(pts[_FACE[0], 0]) + float(pts[_FACE[1], 0])) / 2.0  # as np.mean of two
    mid_x = (float(pts[_S, 0]) + float(pts[_N, 0])) / 2.0
    if face_x == mid_x:
        return facing_direction(pts)
    return "right" if face_x > mid_x else "left"


def mirror_points(points: np.ndarray, width: float) -> np.ndarray:
    """Points of the horizontally mirrored image of width ``width`` (x -> width - x).

    Pixel coordinates have their origin at the top-left pixel corner, so the mirror of
    continuous coordinate x is ``width - x``; y is unchanged.
    """
    out = np.array(points, dtype=float, copy=True)
    out[..., 0] = float(width) - out[..., 0]
    return out


def to_right_facing(points: np.ndarray, width: float) -> tuple[np.ndarray, bool]:
    """Points in a right-facing frame and whether they were mirrored (by ``facing_direction``)."""
    pts = np.asarray(points, dtype=float)
    if facing_direction(pts) == "right":
        return pts.copy(), False
    return mirror_points(pts, width), True
