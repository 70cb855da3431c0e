"""Synthetic streams of reviewed cases for the clinical monitor's tests and bench.

A healthy case: per-landmark radial error ~ Rayleigh(``sigma_mm``) around the reviewer's
point; the reviewer corrects a case whose worst landmark is off by more than
``correct_above_mm`` (final = the true point), accepts it otherwise (final = the AI's), and
rejects ``reject_p`` of the images; confidences fall with the error; the OOD score is the
largest of five image-statistic component scores (|z| / 4 of a standard normal each) and
a feature score. A *degraded* site (noisy, blurred images) shifts the noise and sharpness
statistics by ``3 * degradation`` sd, multiplies the error by ``1 + degradation``, lowers
the confidences and raises the rejections.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from mahtqa.monitoring.clinical import ACCEPTED, CORRECTED, REJECTED, CaseRecord

BASE_POINTS = np.array(
    [[700, 800], [1380, 720], [1340, 1180], [1300, 1520], [1310, 1650], [1250, 1760],
     [1290, 1720]], dtype=float,
)  # fmt: skip
SPACING = (0.1, 0.1)
Z_LIMIT = 4.0


@dataclass(frozen=True)
class StreamSpec:
    sigma_mm: float = 1.1
    correct_above_mm: float = 3.0
    reject_p: float = 0.02
    model_version: str = "maht-net 1"


def simulate_case(
    rng: np.random.Generator, *, case_id: str, at: datetime, site: str,
    degradation: float = 0.0, spec: StreamSpec = StreamSpec(), study_id: int | None = None,
) -> CaseRecord:  # fmt: skip
    d = float(degradation)
    truth = BASE_POINTS + rng.normal(0, 20, size=(1, 2))
    sigma_px = spec.sigma_mm * (1 + d) / SPACING[0]
    ai = truth + rng.normal(0, sigma_px, size=truth.shape)
    err = np.hypot(*((ai - truth) * SPACING[0]).T)
    conf = np.clip(0.95 - 0.08 * err - 0.15 * d + rng.normal(0, 0.05, 7), 0, 1)
    stats = rng.normal(0, 1, 5)
    stats[1:3] += 3 * d  # noise, sharpness
    image = float(np.max(np.abs(stats)) / Z_LIMIT)
    feature = float(max(0.0, rng.normal(0, 1) + 2 * d) / Z_LIMIT)
    if rng.random() < spec.reject_p + 0.08 * d:
        decision, final = REJECTED, None
    elif err.max() > spec.correct_above_mm:
        decision, final = CORRECTED, truth
    else:
        decision, final = ACCEPTED, None
    return CaseRecord(
        case_id=case_id, at=at, site=site, model_version=spec.model_version, ai_points=ai,
        confidences=conf, ood_score=max(image, feature), image_score=image,
        decision=decision, final_points=final, spacing_mm=SPACING, study_id=study_id,
    )  # fmt: skip


def simulate_stream(
    *, seed: int, n: int, sites: tuple[str, ...] = ("site-a", "site-b", "site-c"),
    drift_site: str | None = None, drift_from: int = 0, degradation: float = 1.0,
    start: datetime = datetime(2026, 1, 1, 8, 0), spec: StreamSpec = StreamSpec(),
) -> list[CaseRecord]:  # fmt: skip
    """``n`` cases, sites in turn (one case every 10 minutes); from case ``drift_from`` on,
    the cases of ``drift_site`` are degraded."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        site = sites[i % len(sites)]
        d = degradation if (site == drift_site and i >= drift_from) else 0.0
        out.append(simulate_case(
            rng, case_id=f"case-{i:05d}", at=start + timedelta(minutes=10 * i), site=site,
            degradation=d, spec=spec, study_id=i + 1,
        ))  # fmt: skip
    return out
