"""PNG renditions and thumbnails of dataset images (landmarks drawn), cached on disk
under the dataset store by content hash, so a thumbnail is drawn once."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from django.conf import settings

from apps.datasets.models import DatasetImage, DatasetVersion
from apps.datasets.services.validation import record_of
from mahtqa.cephalometry.landmarks import landmark_index
from mahtqa.datasets.checks import decode_gray
from mahtqa.datasets.render import render_png


def _gray(version: DatasetVersion, image: DatasetImage) -> np.ndarray | None:
    try:
        data = (Path(version.root_path) / image.file).read_bytes()
    except OSError:
        return None
    return decode_gray(data, image.fmt)


def _cache(name: str) -> Path:
    return settings.MAHTQA_DATASET_STORE / "thumbs" / name


def image_png(*, version: DatasetVersion, image: DatasetImage) -> bytes | None:
    """The image as PNG (a PNG file as it is; DICOM and the rest converted)."""
    path = Path(version.root_path) / image.file
    if image.fmt == "png":
        try:
            return path.read_bytes()
        except OSError:
            return None
    gray = _gray(version, image)
    return None if gray is None else cv2.imencode(".png", gray)[1].tobytes()


def image_thumbnail(
    *,
    version: DatasetVersion,
    image: DatasetImage,
    landmark: str = "",
    crop: bool = False,
    suspect_id: str | None = None,
) -> bytes | None:
    """The image with every annotator's landmarks; ``crop``: around ``landmark``; with a
    suspect, also the model's point."""
    suspect = (
        image.suspects.filter(pk=int(suspect_id)).first() if (suspect_id or "").isdigit() else None
    )
    if suspect is not None:
        landmark, crop = suspect.landmark, True
    try:
        index = landmark_index(landmark) if landmark else None
    except KeyError:
        index, landmark = None, ""
    tag = f"{landmark}-{int(crop)}-{suspect.pk if suspect else 0}"
    name = f"{image.sha256 or image.pk}-{version.pk}-{tag}.png"
    cached = _cache(name)
    if cached.is_file():
        return cached.read_bytes()
    gray = _gray(version, image)
    if gray is None:
        return None
    points = record_of(image).annotations
    centre = None
    if crop and index is not None:
        sets = [p[index] for p in points.values() if np.all(np.isfinite(p[index]))]
        centre = tuple(np.mean(sets, axis=0)) if sets else None
    model = tuple(suspect.points["model"]) if suspect else None
    body = render_png(
        gray,
        points=points,
        size=240 if crop else 320,
        crop_around=centre,
        highlight=landmark,
        model_point=model,
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_bytes(body)
    tmp.replace(cached)
    return body
