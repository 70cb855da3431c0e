"""Image quality of one grayscale radiograph, for the dataset validator.

``image_quality(image)`` measures contrast, brightness, sharpness, noise and
clipping on a copy downscaled to ``WORK_SIZE`` (longest side, ``cv2.INTER_AREA``),
so the same content scores alike at any resolution; only the resolution check
uses the original size. It also looks for burned-in text (possible PHI) in the
top and bottom bands. numpy and OpenCV only: no Django, no torch.

Score: 10 minus ``SEVERITY_WEIGHTS`` per issue (error 5, warning 2.5, info 0),
clamped to [0, 10], one decimal. Defaults of ``QualityThresholds`` were
calibrated on 100 ISBI 2015 cephalograms (640x800) and 50 Hamedan ones
(1340x1671): none of them gets a warning, while blurred (sigma 3), noisy
(sigma 25), darkened (x0.15), squashed ([100, 140]) and 200x250 copies do.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "QUALITY_CODES",
    "SEVERITY_WEIGHTS",
    "WORK_SIZE",
    "working_copy",
    "QualityIssue",
    "QualityReport",
    "QualityThresholds",
    "image_quality",
]

QUALITY_CODES: dict[str, str] = {
    "quality_low_contrast": "The 1st-99th percentile grey-level spread is too narrow.",
    "quality_too_dark": "The mean grey level is too low.",
    "quality_too_bright": "The mean grey level is too high.",
    "quality_blurry": "The contrast-normalised variance of the Laplacian is too low.",
    "quality_noisy": "The robust noise estimate (median-based Immerkaer) is too high.",
    "quality_saturated": "Too many pixels are clipped at black (0) or white (255).",
    "quality_low_resolution": "The shorter side of the original image is too small.",
    "quality_burned_in_text": "Text-like regions near the top or bottom edge (possible PHI).",
}
SEVERITY_WEIGHTS: dict[str, float] = {"error": 5.0, "warning": 2.5, "info": 0.0}
WORK_SIZE = 400  # longest side of the working copy every metric is computed on

# Burned-in text, in working pixels (ISBI "SN030581" is 47x10 there).
_TEXT_MIN_HEIGHT, _TEXT_MAX_HEIGHT = 4, 30
_HAT_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))  # wider than a stroke
_ROW_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 1))
_COLUMN_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (1, _TEXT_MAX_HEIGHT + 1))


@dataclass(frozen=True)
class QualityIssue:
    """One finding: a ``QUALITY_CODES`` key, a severity and a readable message."""

    code: str
    severity: str  # "info" | "warning" | "error"
    message: str


@dataclass(frozen=True)
class QualityReport:
    """Score (0-10, 10 = no problem), metrics, issues and burned-in text boxes."""

    score: float
    metrics: dict[str, float]
    issues: tuple[QualityIssue, ...]
    text_boxes: tuple[tuple[int, int, int, int], ...]  # (x, y, w, h), original pixels

    @property
    def codes(self) -> frozenset[str]:
        """The codes of all issues."""
        return frozenset(issue.code for issue in self.issues)


@dataclass(frozen=True)
class QualityThresholds:
    """Limits for each check; metrics are measured on the working copy.

    Real cephalograms measured: contrast >= 0.61, brightness 72-153, sharpness
    >= 176, noise <= 1.03, black <= 5 %, white <= 11 %. Degraded copies: contrast
    <= 0.16 (x0.15, squash), brightness <= 23 (x0.15), sharpness <= 54 (blur),
    noise >= 5.9 (sigma-25 noise). Each limit sits near the geometric mean of the
    two. The text settings find all 95 ISBI texts and nothing else for any
    ``text_min_contrast`` from 64 to 96; text must differ from its background
    by roughly 100 grey levels.
    """

    min_contrast: float = 0.30  # (p99 - p1) / 255
    min_brightness: float = 40.0  # mean grey level, 0-255
    max_brightness: float = 215.0
    min_sharpness: float = 150.0  # var(Laplacian) / max(contrast, 0.05) ** 2
    max_noise: float = 2.5  # robust noise sigma, grey levels
    max_saturation_low: float = 0.5  # fraction at 0: generous, backgrounds are black
    max_saturation_high: float = 0.2  # fraction at 255: collimator edges, labels
    min_short_side: int = 512  # original pixels
    text_min_contrast: int = 72  # top-hat / black-hat response a text pixel needs
    text_min_density: float = 0.45  # fraction of text pixels in a candidate box
    text_min_balance: float = 0.3  # min/max of bright and dark response (strokes + gaps)
    text_min_aspect: float = 3.0  # box width / height (at least ~3 characters)
    text_border: float = 0.15  # text is searched in the top and bottom bands this high


_scratch = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A per-thread array kept between images, for OpenCV's ``dst=``: a fresh result
    array per image is a fresh mapping from the allocator, and on this machine kind its
    page faults cost more than the filter that fills it (about 0.1 ms per image)."""
    key = (name, shape, dtype)
    arrays = getattr(_scratch, "arrays", None)
    if arrays is None:
        arrays = _scratch.arrays = {}
    array = arrays.get(key)
    if array is None:
        if len(arrays) > 16:  # many image sizes: keep only the latest
            arrays.clear()
        array = arrays[key] = np.empty(shape, dtype)
    return array


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 2 or image.size == 0:
        raise ValueError("image must be a non-empty 2-D array (one grayscale channel)")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype != np.uint16:
        raise TypeError(f"image must be uint8 or uint16, not {image.dtype}")
    # Full 16-bit range, so a dark image stays dark (12-bit data in uint16 reads dark too).
    return cv2.convertScaleAbs(np.ascontiguousarray(image), alpha=255.0 / 65535.0)


def _percentile(cdf: np.ndarray, q: float) -> int:
    return int(np.searchsorted(cdf, q * cdf[-1]))


def _robust_noise(work: np.ndarray, buffer: np.ndarray) -> float:
    """Median-based Immerkaer noise sigma: robust to edges, in grey levels."""
    # Sobel's 3x3 second derivative in x and y is Immerkaer's mask ([1, -2, 1] outer
    # itself), the same integers as sepFilter2D with it, at a third of the time.
    second = cv2.Sobel(work, cv2.CV_16S, 2, 2, ksize=3, dst=buffer)
    response = cv2.convertScaleAbs(second, dst=scratch("response", work.shape, np.uint8))
    hist = cv2.calcHist([response], [0], None, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist)
    half = cdf[-1] / 2
    k = int(np.searchsorted(cdf, half))
    below = cdf[k - 1] if k else 0.0
    median = max(0.0, k - 0.5 + (half - below) / max(hist[k], 1.0))
    return float(median) / (0.6745 * 6.0)  # |N(0, 6 sigma)| has median 0.6745 * 6 sigma


def _text_boxes(band: np.ndarray, t: QualityThresholds) -> list[tuple[int, int, int, int]]:
    """Boxes of dense, bipolar (dark strokes, bright gaps), wide, short blobs in a band."""
    bright = cv2.morphologyEx(band, cv2.MORPH_TOPHAT, _HAT_KERNEL)  # thin bright strokes
    dark = cv2.morphologyEx(band, cv2.MORPH_BLACKHAT, _HAT_KERNEL)  # thin dark strokes
    _, mask = cv2.threshold(cv2.max(bright, dark), t.text_min_contrast - 1, 255, cv2.THRESH_BINARY)
    lines = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _COLUMN_KERNEL)  # taller than any text
    mask = cv2.subtract(mask, lines)
    closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _ROW_KERNEL)  # join the characters
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for x, y, w, h in map(cv2.boundingRect, contours):
        if not (_TEXT_MIN_HEIGHT <= h <= _TEXT_MAX_HEIGHT and w >= t.text_min_aspect * h):
            continue
        box = np.s_[y : y + h, x : x + w]
        mean_bright, mean_dark = cv2.mean(bright[box])[0], cv2.mean(dark[box])[0]
        balance = min(mean_bright, mean_dark) / max(mean_bright, mean_dark, 1.0)
        if (
            cv2.countNonZero(mask[box]) >= t.text_min_density * w * h
            and balance >= t.text_min_balance
        ):
            boxes.append((x, y, w, h))
    return boxes


def _issues(m: dict[str, float], t: QualityThresholds) -> list[QualityIssue]:
    found: list[QualityIssue] = []

    def add(code: str, message: str, severity: str = "warning") -> None:
        found.append(QualityIssue(code=code, severity=severity, message=message))

    if min(m["width"], m["height"]) < t.min_short_side:
        add(
            "quality_low_resolution",
            f"Resolution {m['width']:.0f}x{m['height']:.0f}: the shorter side is below "
            f"{t.min_short_side} px.",
            "error",
        )
    if m["contrast"] < t.min_contrast:
        add(
            "quality_low_contrast",
            f"Contrast {m['contrast']:.2f} (1st-99th percentile spread / 255) is below "
            f"{t.min_contrast:.2f}: the image looks washed out.",
        )
    if m["brightness"] < t.min_brightness:
        add(
            "quality_too_dark",
            f"Brightness {m['brightness']:.1f} (mean grey level) is below "
            f"{t.min_brightness:.0f}: the image is too dark.",
        )
    if m["brightness"] > t.max_brightness:
        add(
            "quality_too_bright",
            f"Brightness {m['brightness']:.1f} (mean grey level) is above "
            f"{t.max_brightness:.0f}: the image is too bright.",
        )
    if m["sharpness"] < t.min_sharpness:
        add(
            "quality_blurry",
            f"Sharpness {m['sharpness']:.1f} (contrast-normalised variance of the Laplacian) "
            f"is below {t.min_sharpness:.0f}: the image looks blurred.",
        )
    if m["noise"] > t.max_noise:
        add(
            "quality_noisy",
            f"Noise {m['noise']:.1f} (robust sigma, grey levels) is above "
            f"{t.max_noise:.1f}: the image looks noisy.",
        )
    clipped = [
        f"{m[key]:.1%} of pixels at {level} (limit {limit:.0%})"
        for key, level, limit in (
            ("saturation_low", 0, t.max_saturation_low),
            ("saturation_high", 255, t.max_saturation_high),
        )
        if m[key] > limit
    ]
    if clipped:
        add("quality_saturated", f"Clipped: {'; '.join(clipped)}.")
    return found


def working_copy(gray: np.ndarray) -> np.ndarray:
    """The copy every metric is computed on: longest side ``WORK_SIZE``, area-averaged.
    An exact integer factor (the 800-px ISBI copies: 2) takes OpenCV's fast path."""
    height, width = gray.shape
    longest = max(height, width)
    if longest <= WORK_SIZE:
        return gray
    factor = WORK_SIZE / longest
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def image_quality(
    image: np.ndarray,
    *,
    thresholds: QualityThresholds = QualityThresholds(),
    work: np.ndarray | None = None,
) -> QualityReport:
    """Score one 2-D uint8 radiograph (uint16 is scaled by 255 / 65535 first). ``work``:
    its ``working_copy`` when the caller already has it."""
    gray = _to_uint8(image)
    height, width = gray.shape
    if work is None:
        work = working_copy(gray)
    scale = work.shape[0] / height

    hist = cv2.calcHist([work], [0], None, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist)
    total = float(cdf[-1])
    contrast = (_percentile(cdf, 0.99) - _percentile(cdf, 0.01)) / 255.0
    laplacian = cv2.Laplacian(work, cv2.CV_16S, dst=scratch("laplacian", work.shape, np.int16))
    lap_mean = cv2.sumElems(laplacian)[0] / total
    lap_var = cv2.norm(laplacian, cv2.NORM_L2SQR) / total - lap_mean**2
    metrics = {
        "contrast": contrast,
        "brightness": float(hist @ np.arange(256)) / total,
        "sharpness": lap_var / max(contrast, 0.05) ** 2,
        "noise": _robust_noise(work, laplacian),  # reuses the Laplacian's buffer
        "saturation_low": float(hist[0]) / total,
        "saturation_high": float(hist[255]) / total,
        "width": float(width),
        "height": float(height),
    }

    boxes = []
    band = max(1, round(thresholds.text_border * work.shape[0]))
    for offset in sorted({0, work.shape[0] - band}):  # top and bottom bands
        for bx, by, bw, bh in _text_boxes(work[offset : offset + band], thresholds):
            x0, y0 = int(bx / scale), int((by + offset) / scale)
            x1 = min(width, int(np.ceil((bx + bw) / scale)))
            y1 = min(height, int(np.ceil((by + offset + bh) / scale)))
            boxes.append((x0, y0, x1 - x0, y1 - y0))
    metrics["text_area"] = sum(w * h for _, _, w, h in boxes) / float(width * height)

    issues = _issues(metrics, thresholds)
    if boxes:
        issues.append(
            QualityIssue(
                code="quality_burned_in_text",
                severity="info",
                message=f"{len(boxes)} burned-in text region(s) near the top or bottom edge "
                f"cover {metrics['text_area']:.2%} of the image: check them for patient data.",
            )
        )
    penalty = sum(SEVERITY_WEIGHTS[issue.severity] for issue in issues)
    score = round(min(10.0, max(0.0, 10.0 - penalty)), 1)
    return QualityReport(
        score=score, metrics=metrics, issues=tuple(issues), text_boxes=tuple(boxes)
    )
