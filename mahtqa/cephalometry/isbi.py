"""Loader for the ISBI 2015 cephalometric subset (images plus two annotators).

``root`` is either an ISBI-layout folder or the manifest of a registered dataset
version (a ``.json`` file written by ``apps.datasets``: ``{"dataset_version": {...},
"cases": [{"case_id", "image", "split", "spacing_mm", "annotators": {name: 7 x [x, y]}}]}``),
so every engine script (train, crossval, evaluate) reads a registered version the same
way it reads a folder. ``dataset_version_of(root)`` says which version it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mahtqa.cephalometry.landmarks import ISBI_NUMBERS

ISBI_SPACING_MM: tuple[float, float] = (0.300, 0.3023)  # (row_mm, col_mm) of the 640x800 copies
ISBI_LANDMARK_COUNT = 19
ANNOTATORS: tuple[str, str] = ("senior", "junior")


@dataclass(frozen=True)
class IsbiCase:
    """One case: image path and both annotators' seven landmarks, shape (7, 2), (x, y) px."""

    case_id: str
    image_path: Path
    senior: np.ndarray
    junior: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Mean of both annotators, the usual ground truth."""
        return (self.senior + self.junior) / 2.0


def _normalise_case_id(case_id: str | int) -> str:
    if isinstance(case_id, int):
        return f"{case_id:03d}"
    return str(case_id)


def parse_isbi_annotation(path: Path, *, allow_missing: tuple[int, ...] = ()) -> np.ndarray:
    """All 19 ISBI points of one annotation file as a (19, 2) float array.

    ``allow_missing``: 0-based lines that may be ``nan,nan`` (an annotator did not place
    that landmark); any other non-finite coordinate is an error."""
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    lines = [ln for ln in lines if ln]
    if len(lines) < ISBI_LANDMARK_COUNT:
        raise ValueError(f"{path}: expected {ISBI_LANDMARK_COUNT} lines 'x,y', found {len(lines)}")
    points = np.empty((ISBI_LANDMARK_COUNT, 2), dtype=float)
    for i, line in enumerate(lines[:ISBI_LANDMARK_COUNT]):
        parts = line.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            points[i] = (float(parts[0]), float(parts[1]))
        except ValueError:
            raise ValueError(f"{path}: line {i + 1} is not 'x,y': {line[:40]!r}") from None
        if not np.all(np.isfinite(points[i])) and not (
            i in allow_missing and np.all(np.isnan(points[i]))
        ):
            raise ValueError(f"{path}: line {i + 1} has a non-finite coordinate")
    return points


def read_seven(path: Path) -> np.ndarray:
    """The project's seven landmarks (order of ``LANDMARKS``) from one ISBI annotation file."""
    ours = [n - 1 for n in ISBI_NUMBERS]
    unused = tuple(i for i in range(ISBI_LANDMARK_COUNT) if i not in ours)
    return parse_isbi_annotation(path, allow_missing=unused)[ours].copy()


def _annotator_dirs(root: Path) -> tuple[Path, Path]:
    base = root / "annotations"
    present = [base / name for name in ANNOTATORS if (base / name).is_dir()]
    if not present and base.is_dir():  # another site's annotators (same layout)
        present = sorted(p for p in base.iterdir() if p.is_dir())[:2]
    if not present:
        raise FileNotFoundError(f"{base}: no 'senior' or 'junior' annotation folder")
    if len(present) == 1:
        return present[0], present[0]
    return present[0], present[1]


@lru_cache(maxsize=8)
def _manifest(path: Path, mtime: float) -> dict[str, Any]:  # noqa: ARG001 - mtime keys the cache
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise ValueError(f"{path}: not a dataset version manifest")
    return doc


def _is_manifest(root: Path) -> bool:
    return Path(root).suffix == ".json" and Path(root).is_file()


def _read_manifest(root: Path) -> dict[str, Any]:
    path = Path(root)
    return _manifest(path, path.stat().st_mtime)


def data_path(value: str) -> Path:
    """An engine script's ``--data``: a folder, a manifest file, or ``version:ID`` (the
    manifest a registered version wrote under ``$MAHTQA_DATASET_STORE/manifests``)."""
    if value.startswith("version:"):
        store = Path(os.environ.get("MAHTQA_DATASET_STORE", "var/datasets"))
        path = store / "manifests" / f"{value.split(':', 1)[1]}.json"
        if not path.is_file():
            raise ValueError(f"no manifest for dataset {value} at {path}")
        return path
    return Path(value)


def dataset_version_of(root: Path) -> dict[str, Any] | None:
    """``{"id", "label", "content_hash"}`` when ``root`` is a registered version's manifest."""
    return _read_manifest(root).get("dataset_version") if _is_manifest(root) else None


def _manifest_case(root: Path, cid: str) -> IsbiCase:
    doc = _read_manifest(root)
    case = next((c for c in doc["cases"] if c["case_id"] == cid), None)
    if case is None:
        raise FileNotFoundError(f"{root}: no case {cid}")
    names = sorted(
        case["annotators"],
        key=lambda n: (n not in ANNOTATORS, ANNOTATORS.index(n) if n in ANNOTATORS else 0, n),
    )
    if not names:
        raise ValueError(f"{root}: case {cid} has no annotation")
    pts = [np.asarray([[np.nan, np.nan] if p is None else p for p in case["annotators"][n]], float)
           for n in names[:2]]  # fmt: skip
    if any(not np.all(np.isfinite(p)) for p in pts):
        raise ValueError(f"{root}: case {cid} has a landmark without coordinates")
    return IsbiCase(case_id=cid, image_path=Path(case["image"]), senior=pts[0], junior=pts[-1])


def available_case_ids(root: Path) -> list[str]:
    """Case ids (file stems) of ``root/images/*.png``, sorted (or of the manifest)."""
    if _is_manifest(root):
        return sorted(c["case_id"] for c in _read_manifest(root)["cases"])
    images = Path(root) / "images"
    if not images.is_dir():
        raise FileNotFoundError(f"{images}: images folder not found")
    return sorted(p.stem for p in images.glob("*.png"))


def load_isbi_case(root: Path, case_id: str | int) -> IsbiCase:
    """Load one case; ``FileNotFoundError`` or ``ValueError`` naming the file on problems."""
    root = Path(root)
    cid = _normalise_case_id(case_id)
    if _is_manifest(root):
        return _manifest_case(root, cid)
    image_path = root / "images" / f"{cid}.png"
    if not image_path.is_file():
        raise FileNotFoundError(f"{image_path}: image not found")
    senior_dir, junior_dir = _annotator_dirs(root)
    points = []
    for folder in (senior_dir, junior_dir):
        path = folder / f"{cid}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: annotation not found")
        points.append(read_seven(path))
    return IsbiCase(case_id=cid, image_path=image_path, senior=points[0], junior=points[1])


def load_isbi_cases(root: Path, case_ids: Iterable[str | int] | None = None) -> list[IsbiCase]:
    """Load cases (all images found when ``case_ids`` is None), in the given order."""
    ids = available_case_ids(root) if case_ids is None else list(case_ids)
    return [load_isbi_case(root, cid) for cid in ids]
