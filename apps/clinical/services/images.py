"""The radiograph as PNG for the review screen, from the de-identified DICOM, cached.

Two renditions: ``full`` (every pixel, for zoom) and ``preview`` (long side at most
``PREVIEW_MAX_PX``, shown first so the screen is usable before the full image arrives).
"""

from __future__ import annotations

import cv2
import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.clinical.models import Study
from apps.clinical.services.intake import dicom_limits
from apps.core.errors import NotFound
from mahtqa.imaging.dicom import RadiographImage, decode_radiograph

PREVIEW_MAX_PX = 1024
SIZES = ("full", "preview")


def study_png_name(study: Study, size: str = "full") -> str:
    suffix = "" if size == "full" else f"-{size}"
    return f"png/{study.public_id}-{study.file_sha256[:12]}{suffix}.png"


def _read(name: str) -> bytes | None:
    if not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def _encode(pixels: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def _preview(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    factor = PREVIEW_MAX_PX / max(h, w)
    if factor >= 1:
        return pixels
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def _save(name: str, data: bytes) -> None:
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(data))


def study_png(*, study: Study, size: str = "full") -> bytes:
    """An 8-bit PNG (min/max scaled; window/level is applied in the browser).

    Rendered once per study and rendition, kept in the default (de-identified) storage.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}")
    cached = _read(study_png_name(study, size))
    if cached is not None:
        return cached
    full = _read(study_png_name(study))
    if full is not None:  # rendered before previews existed: derive it from the full PNG
        pixels = cv2.imdecode(np.frombuffer(full, np.uint8), cv2.IMREAD_GRAYSCALE)
        data = _encode(_preview(pixels))
        _save(study_png_name(study, "preview"), data)
        return data
    if not study.deid_file or not default_storage.exists(study.deid_file):
        raise NotFound("image_missing", "The radiograph's file is not in storage.")
    with default_storage.open(study.deid_file, "rb") as fh:
        image = decode_radiograph(fh.read(), limits=dicom_limits())
    renditions = study_png_store(study=study, image=image)
    return renditions[size]


def study_png_store(*, study: Study, image: RadiographImage) -> dict[str, bytes]:
    """Render and keep both renditions from pixels already decoded (the worker's copy),
    so the review screen never decodes the DICOM again."""
    pixels = np.round(image.normalized() * 255).astype(np.uint8)
    out = {"full": _encode(pixels), "preview": _encode(_preview(pixels))}
    for size, data in out.items():
        _save(study_png_name(study, size), data)
    return out
