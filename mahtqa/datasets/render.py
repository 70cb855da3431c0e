"""Thumbnails of dataset images with landmarks drawn (one colour per annotator, the
model's point as a ring), whole or cropped around one landmark, as PNG bytes."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from mahtqa.cephalometry.landmarks import ABBREVIATIONS

# BGR; colour-blind-safe pair (blue / orange), the model in green
COLOURS = ((211, 91, 10), (0, 140, 230), (90, 170, 40), (160, 60, 160))
MODEL_COLOUR = (60, 180, 60)


def render_png(
    gray: np.ndarray,
    *,
    points: Mapping[str, np.ndarray],
    size: int = 320,
    crop_around: tuple[float, float] | None = None,
    crop_px: int = 120,
    highlight: str = "",
    model_point: tuple[float, float] | None = None,
) -> bytes:
    """``points``: annotator -> (7, 2) in the image's pixels (nan skipped)."""
    img = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    x0 = y0 = 0
    if crop_around is not None:
        cx, cy = (int(round(v)) for v in crop_around)
        x0, y0 = max(0, cx - crop_px), max(0, cy - crop_px)
        img = img[y0 : cy + crop_px, x0 : cx + crop_px]
    h, w = img.shape[:2]
    scale = size / max(h, w)
    img = cv2.resize(
        img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    r = max(3, round(size / 80))
    for n, (_annotator, pts) in enumerate(sorted(points.items())):
        colour = COLOURS[n % len(COLOURS)]
        for i, p in enumerate(np.asarray(pts, float)):
            if not np.all(np.isfinite(p)):
                continue
            x, y = round((p[0] - x0) * scale), round((p[1] - y0) * scale)
            thick = 2 if ABBREVIATIONS[i] == highlight else 1
            cv2.drawMarker(img, (x, y), colour, cv2.MARKER_CROSS, r * 2 + 2 * thick, thick + 1)
            if crop_around is None:
                cv2.putText(
                    img,
                    ABBREVIATIONS[i],
                    (x + r, y - r),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.3 + size / 2000,
                    colour,
                    1,
                    cv2.LINE_AA,
                )
    if model_point is not None:
        x, y = round((model_point[0] - x0) * scale), round((model_point[1] - y0) * scale)
        cv2.circle(img, (x, y), r + 2, MODEL_COLOUR, 2, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover - encoding an in-memory BGR image does not fail
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
