"""Annotation errors found by the model: where the model and the other annotator agree
with each other but not with this annotator, this annotator's point is suspect.

For annotators ``a`` and ``b`` and the model ``m`` on one landmark (distances in mm):
``a`` is suspect when d(m, b) <= ``agree_mm`` while d(a, m) and d(a, b) both exceed
``disagree_mm``. The evidence is min(d(a, m), d(a, b)) - d(m, b): how much further
``a`` is from both witnesses than they are from each other. Use out-of-fold
predictions (or a model that never saw the images): a model trained on these very
annotations drifts towards them and hides their errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mahtqa.cephalometry.landmarks import ABBREVIATIONS
from mahtqa.datasets.checks import point_distances
from mahtqa.datasets.layouts import Spacing

AGREE_MM = 1.5
DISAGREE_MM = 2.5


@dataclass(frozen=True)
class Suspect:
    key: str
    annotator: str
    landmark: str
    evidence: float
    self_model: float
    self_other: float
    model_other: float
    point_self: tuple[float, float]
    point_other: tuple[float, float]
    point_model: tuple[float, float]
    other: str


@dataclass(frozen=True)
class Annotated:
    key: str
    annotations: Mapping[str, np.ndarray]  # annotator -> (7, 2), nan where missing
    spacing: Spacing | None


def find_suspects(
    *,
    images: Iterable[Annotated],
    predictions: Mapping[str, np.ndarray],
    agree_mm: float = AGREE_MM,
    disagree_mm: float = DISAGREE_MM,
) -> list[Suspect]:
    """Every suspect annotation, the strongest evidence first."""
    out: list[Suspect] = []
    for image in images:
        model = predictions.get(image.key)
        if model is None or len(image.annotations) < 2:
            continue
        model = np.asarray(model, float)
        names = sorted(image.annotations)
        for a in names:
            pa = np.asarray(image.annotations[a], float)
            for b in names:
                if b == a:
                    continue
                pb = np.asarray(image.annotations[b], float)
                d_am = point_distances(pa, model, image.spacing)
                d_ab = point_distances(pa, pb, image.spacing)
                d_mb = point_distances(model, pb, image.spacing)
                hit = (d_mb <= agree_mm) & (d_am > disagree_mm) & (d_ab > disagree_mm)
                for i in np.flatnonzero(hit):
                    out.append(
                        Suspect(
                            key=image.key,
                            annotator=a,
                            landmark=ABBREVIATIONS[i],
                            evidence=round(float(min(d_am[i], d_ab[i]) - d_mb[i]), 3),
                            self_model=round(float(d_am[i]), 3),
                            self_other=round(float(d_ab[i]), 3),
                            model_other=round(float(d_mb[i]), 3),
                            point_self=tuple(pa[i].round(2).tolist()),
                            point_other=tuple(pb[i].round(2).tolist()),
                            point_model=tuple(model[i].round(2).tolist()),
                            other=b,
                        )
                    )
    # with three or more annotators a point can be suspect against several others: keep the best
    best: dict[tuple[str, str, str], Suspect] = {}
    for s in out:
        k = (s.key, s.annotator, s.landmark)
        if k not in best or s.evidence > best[k].evidence:
            best[k] = s
    return sorted(best.values(), key=lambda s: (-s.evidence, s.key, s.landmark))


def predictions_from_oof(path: Path) -> dict[str, np.ndarray]:
    """Out-of-fold predictions of ``python -m mahtqa.engine.crossval`` (``oof.json``):
    case id -> (7, 2) points in the image's pixels. ``ValueError`` on a bad file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        cases = doc["cases"]
        out = {str(c["case_id"]): np.asarray(c["points"], float) for c in cases}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an out-of-fold predictions file ({type(exc).__name__})") from None
    if any(p.shape != (len(ABBREVIATIONS), 2) for p in out.values()):
        raise ValueError("every case needs seven [x, y] points")
    return out
