"""Small PNG charts for the docs (OpenCV drawing; no plotting library needed)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

W, H, M = 520, 400, 60  # size and margin in pixels
INK, GRID, BLUE, RED = (40, 40, 40), (220, 220, 220), (200, 90, 20), (40, 40, 200)


def _canvas(title: str, xlabel: str, ylabel: str) -> np.ndarray:
    img = np.full((H, W, 3), 255, np.uint8)
    for i in range(6):
        x = M + i * (W - 2 * M) // 5
        y = H - M - i * (H - 2 * M) // 5
        cv2.line(img, (x, M), (x, H - M), GRID, 1)
        cv2.line(img, (M, y), (W - M, y), GRID, 1)
    cv2.rectangle(img, (M, M), (W - M, H - M), INK, 1)
    cv2.putText(img, title, (M, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.55, INK, 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (M, H - 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, INK, 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (8, M - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, INK, 1, cv2.LINE_AA)
    return img


def _xy(x: float, y: float, ymax: float = 1.0) -> tuple[int, int]:
    return (int(M + x * (W - 2 * M)), int(H - M - (y / ymax) * (H - 2 * M)))


def _ticks(img: np.ndarray, ymax: float) -> None:
    for i in range(6):
        v = i / 5
        cv2.putText(img, f"{v:.1f}", (_xy(v, 0)[0] - 10, H - M + 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, INK, 1, cv2.LINE_AA)  # fmt: skip
        cv2.putText(img, f"{v * ymax:g}", (M - 40, _xy(0, v * ymax, ymax)[1] + 4),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, INK, 1, cv2.LINE_AA)  # fmt: skip


def reliability_png(rows: list[dict], path: Path) -> None:
    """Predicted P(error <= 2 mm) per bin against the observed share within 2 mm."""
    img = _canvas("Reliability (out-of-fold)", "predicted P(error <= 2 mm)", "observed")
    _ticks(img, 1.0)
    cv2.line(img, _xy(0, 0), _xy(1, 1), GRID[::-1], 1, cv2.LINE_AA)
    pts = [(r["mean_confidence"], 1 - r["share_over_threshold"], r["count"])
           for r in rows if r["count"]]  # fmt: skip
    for (x0, y0, _), (x1, y1, _) in zip(pts, pts[1:], strict=False):
        cv2.line(img, _xy(x0, y0), _xy(x1, y1), BLUE, 2, cv2.LINE_AA)
    for x, y, n in pts:
        cv2.circle(img, _xy(x, y), 4 + int(np.sqrt(n) / 3), BLUE, -1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def tradeoff_png(curve: list[dict], path: Path) -> None:
    """Unsafe releases (cases with a landmark > 4 mm) against the release rate."""
    ymax = max(1, max(p["unsafe_released"] for p in curve))
    img = _canvas("Routing trade-off (cross-fitted risk)", "release rate", "unsafe released")
    _ticks(img, ymax)
    pts = [_xy(p["release_rate"], p["unsafe_released"], ymax) for p in curve]
    for a, b in zip(pts, pts[1:], strict=False):
        cv2.line(img, a, b, RED, 2, cv2.LINE_AA)
    cv2.imwrite(str(path), img)
