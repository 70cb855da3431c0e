"""The radiograph as a PNG for the review screen, from the de-identified DICOM, cached."""

from __future__ import annotations

import cv2
import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.clinical.models import Study
from apps.clinical.services.intake import dicom_limits
from mahtqa.imaging.dicom import RadiographImage, decode_radiograph


def study_png_name(study: Study) -> str:
    return f"png/{study.public_id}-{study.file_sha256[:12]}.png"


def study_png(*, study: Study) -> bytes:
    """Full-resolution 8-bit PNG (min/max scaled; window/level is applied in the browser).

    Rendered once per study and kept in the default (de-identified) storage.
    """
    name = study_png_name(study)
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as fh:
            return fh.read()
    with default_storage.open(study.deid_file, "rb") as fh:
        image = decode_radiograph(fh.read(), limits=dicom_limits())
    return study_png_store(study=study, image=image)


def study_png_store(*, study: Study, image: RadiographImage) -> bytes:
    """Render and keep the review PNG from pixels already decoded (the worker's copy),
    so the review screen never decodes the DICOM again."""
    name = study_png_name(study)
    pixels = np.round(image.normalized() * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise ValueError("PNG encoding failed")
    data = buf.tobytes()
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(data))
    return data
