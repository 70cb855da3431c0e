"""Per-image checks of a validation run: file integrity, annotation validity, image
quality and annotator consistency. One image at a time, so a run over 10,000 images
holds one image in memory (see ``mahtqa.datasets.summary`` for the dataset-wide part).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mahtqa.cephalometry.landmarks import ABBREVIATIONS
from mahtqa.cephalometry.plausibility import PlausibilityConfig, check_plausibility
from mahtqa.datasets.layouts import ImageRecord, Spacing
from mahtqa.datasets.quality import image_quality, scratch, working_copy

SEVERITIES: tuple[str, ...] = ("info", "warning", "error", "critical")
DEFAULT_CONSISTENCY_MM = 2.0
DUPLICATE_POINT_PX = 0.5
SWAP_FACTOR = 3.0  # every landmark further apart than 3x the threshold: a swapped file?
DHASH_SIDE = 16  # 256 bits
_PLAUSIBILITY = PlausibilityConfig()  # the clinical defaults, built once (never changed)


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    message: str
    image: str = ""  # case id
    landmark: str = ""
    annotator: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImageResult:
    key: str
    sha256: str = ""
    size: int = 0
    width: int | None = None
    height: int | None = None
    readable: bool = False
    quality_score: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    dhash: str = ""  # hex
    distances: dict[str, list[float | None]] = field(default_factory=dict)  # "a|b" -> 7
    unit: str = "mm"
    findings: list[Finding] = field(default_factory=list)


@contextlib.contextmanager
def opencv_single_threaded() -> Iterator[None]:
    """OpenCV's own thread pool off while images are checked: the parallelism of a run
    is across images (``MAHTQA_DATASET_WORKERS`` threads), and OpenCV splitting each
    small working-copy operation over the cores costs more than it gains (0.2 ms per
    image here, and oversubscribes the cores when several images run at once)."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def _finding(result: ImageResult, code: str, severity: str, message: str, **kw: Any) -> None:
    result.findings.append(Finding(code, severity, message, image=result.key, **kw))


def _complete(data: bytes, fmt: str) -> bool:
    """The file's trailer is present (a truncated PNG or JPEG lacks it)."""
    if fmt == "png":
        return data[-12:-4] == b"\x00\x00\x00\x00IEND"
    if fmt in ("jpg", "jpeg"):
        return data.rstrip(b"\x00")[-2:] == b"\xff\xd9"
    return True


def decode_gray(data: bytes, fmt: str) -> np.ndarray | None:
    """8-bit grayscale pixels, or None when the bytes do not decode."""
    if fmt == "dicom":
        from mahtqa.imaging.dicom import decode_radiograph  # pydicom only for DICOM sets
        from mahtqa.imaging.errors import ImagingError

        try:
            return (decode_radiograph(data).normalized() * 255.0).astype(np.uint8)
        except ImagingError:
            return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    return image if image is not None and image.size else None


def dhash(gray: np.ndarray) -> str:
    """256-bit difference hash (gradient signs of a 17x16 grid of block means) as 64 hex
    digits. The block means come from one integral image (OpenCV's area resize to 17x16
    took 0.3 ms of a 400-px working copy; this takes a third of it). On the ISBI subset,
    different patients differ in >= 22 bits; a JPEG re-encoded, halved, blurred (sigma 2)
    or noisier (sigma 8) copy of one image in <= 9 (NEAR_DUPLICATE_BITS is 10)."""
    height, width = gray.shape[:2]
    if height < DHASH_SIDE or width < DHASH_SIDE + 1:  # too small for blocks: stretch it
        gray = cv2.resize(gray, (DHASH_SIDE + 1, DHASH_SIDE), interpolation=cv2.INTER_NEAREST)
        height, width = gray.shape[:2]
    ys, xs, areas = _dhash_grid(height, width)
    total = cv2.integral(gray, sum=scratch("integral", (height + 1, width + 1), np.int32))
    corners = total[ys][:, xs].astype(np.int64)
    sums = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    means = sums / areas
    bits = (means[:, 1:] > means[:, :-1]).ravel()
    return np.packbits(bits).tobytes().hex()


@functools.lru_cache(maxsize=64)
def _dhash_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block edges (rows, columns) and block areas of the dHash grid for one image size."""
    ys = np.linspace(0, height, DHASH_SIDE + 1).round().astype(np.intp)
    xs = np.linspace(0, width, DHASH_SIDE + 2).round().astype(np.intp)
    return ys, xs, np.diff(ys)[:, None] * np.diff(xs)[None, :]


def point_distances(a: np.ndarray, b: np.ndarray, spacing: Spacing | None) -> np.ndarray:
    """Per-landmark distance, in mm per axis when the spacing is known, else in pixels."""
    d = np.asarray(a, float) - np.asarray(b, float)
    row_mm, col_mm = spacing if spacing else (1.0, 1.0)
    return np.hypot(d[:, 0] * col_mm, d[:, 1] * row_mm)


def _check_points(result: ImageResult, annotator: str, pts: np.ndarray, rec: ImageRecord) -> bool:
    """Validity of one annotator's seven points; True when they can be used further.

    Plain Python floats: for seven points that is a third of the time of the numpy
    expressions (array set-up dominates them); the plausibility rules run only on
    finite points inside the image."""
    rows = pts.tolist()
    width, height = result.width, result.height
    usable = True
    for i, (x, y) in enumerate(rows):
        name = ABBREVIATIONS[i]
        if not (math.isfinite(x) and math.isfinite(y)):
            usable = False
            _finding(
                result,
                "annotation_nan",
                "error",
                f"{name} by {annotator} has no coordinates.",
                landmark=name,
                annotator=annotator,
            )
        elif (
            width is not None and height is not None and not (0 <= x <= width and 0 <= y <= height)
        ):
            usable = False
            _finding(
                result,
                "annotation_outside_image",
                "error",
                f"{name} by {annotator} at ({x:.1f}, {y:.1f}) is outside the "
                f"{width}x{height} image.",
                landmark=name,
                annotator=annotator,
                details={"x": float(x), "y": float(y)},
            )
    if not usable:
        return False
    ok = True
    for i, j in combinations(range(len(rows)), 2):
        if math.hypot(rows[i][0] - rows[j][0], rows[i][1] - rows[j][1]) < DUPLICATE_POINT_PX:
            _finding(
                result,
                "annotation_duplicate_points",
                "error",
                f"{ABBREVIATIONS[i]} and {ABBREVIATIONS[j]} by {annotator} are the same point.",
                landmark=ABBREVIATIONS[j],
                annotator=annotator,
            )
            ok = False
    for f in check_plausibility(
        pts, spacing_mm=rec.spacing_mm, image_width=result.width, config=_PLAUSIBILITY
    ):
        if f.code == "spacing_unknown":
            continue
        severity = (
            "error" if f.severity == "high" else "warning" if f.severity == "warning" else "info"
        )
        _finding(
            result,
            f"anatomy_{f.code}",
            severity,
            f"{annotator}: {f.message}",
            landmark=",".join(f.landmarks),
            annotator=annotator,
        )
    return ok


def _consistency(
    result: ImageResult, rec: ImageRecord, usable: list[str], threshold: float
) -> None:
    result.unit = "mm" if rec.spacing_mm else "px"
    for a, b in combinations(usable, 2):
        d = point_distances(rec.annotations[a], rec.annotations[b], rec.spacing_mm)
        result.distances[f"{a}|{b}"] = [round(float(v), 4) for v in d]
        if rec.spacing_mm is None:
            continue
        if float(np.min(d)) > SWAP_FACTOR * threshold:
            _finding(
                result,
                "annotators_disagree_all",
                "error",
                f"{a} and {b} disagree on every landmark (closest {np.min(d):.1f} mm): a swapped "
                "or misnamed annotation file?",
                annotator=b,
                details={"distances_mm": result.distances[f"{a}|{b}"]},
            )
            continue
        for i, name in enumerate(ABBREVIATIONS):
            if d[i] > threshold:
                _finding(
                    result,
                    "annotator_disagreement",
                    "warning",
                    f"{a} and {b} place {name} {d[i]:.2f} mm apart (threshold {threshold:g} mm).",
                    landmark=name,
                    annotator=b,
                    details={"distance_mm": round(float(d[i]), 3)},
                )


def check_image(
    *,
    record: ImageRecord,
    root: Path,
    expected_sha256: str = "",
    consistency_mm: float = DEFAULT_CONSISTENCY_MM,
    read: Callable[[Path], bytes] | None = None,
) -> ImageResult:
    """Every per-image check of one record; never raises for a bad file."""
    result = ImageResult(key=record.key)
    path = root / record.file
    try:
        data = read(path) if read else path.read_bytes()
    except FileNotFoundError:
        _finding(result, "image_missing", "critical", f"{record.file} is listed but not on disk.")
        return result
    except OSError as exc:
        _finding(
            result,
            "image_unreadable",
            "critical",
            f"{record.file} cannot be read ({exc.strerror}).",
        )
        return result
    result.size = len(data)
    if not data:
        _finding(result, "image_zero_byte", "critical", f"{record.file} is empty (0 bytes).")
        return result
    result.sha256 = hashlib.sha256(data).hexdigest()
    if expected_sha256 and result.sha256 != expected_sha256:
        _finding(
            result,
            "file_changed",
            "critical",
            f"{record.file} changed since the version was registered (sha256 differs).",
        )
    gray = decode_gray(data, record.fmt)
    complete = _complete(data, record.fmt)
    if gray is None or not complete:
        if complete:
            _finding(result, "image_corrupted", "critical", f"{record.file} does not decode.")
        else:
            _finding(
                result,
                "image_truncated",
                "critical",
                f"{record.file} is cut short (no end-of-image marker).",
            )
        return result
    result.readable = True
    result.height, result.width = (int(v) for v in gray.shape[:2])
    work = working_copy(gray)
    report = image_quality(gray, work=work)
    result.quality_score = float(report.score)
    result.metrics = {k: round(float(v), 4) for k, v in report.metrics.items()}
    for issue in report.issues:
        details = (
            {"boxes": [list(b) for b in report.text_boxes]}
            if issue.code == "quality_burned_in_text"
            else {}
        )
        _finding(result, issue.code, issue.severity, issue.message, details=details)
    result.dhash = dhash(work)
    usable = [
        a for a, pts in sorted(record.annotations.items()) if _check_points(result, a, pts, record)
    ]
    _consistency(result, record, usable, consistency_mm)
    return result
