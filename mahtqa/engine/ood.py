"""Out-of-distribution guard: how unlike the training radiographs an input is.

Each component is turned into a score where 1.0 is the edge of what the training
radiographs show (``Z_LIMIT`` standard deviations, or a fixed tolerance where the
training data do not vary); the overall ``ood_score`` is the largest component.
A score above 1 means "do not trust the confidences on this image".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from mahtqa.engine.preprocess import Frame

Z_LIMIT = 4.0
HIST_BINS = 32
ASPECT_TOLERANCE = float(np.log(1.15))  # a 15 % change of aspect ratio scores 1
FOV_TOLERANCE = float(np.log(1.25))  # a 25 % change of the physical field of view scores 1
STAT_NAMES = ("histogram", "sharpness", "noise", "mean", "contrast")


def _content(canonical: np.ndarray, frame: Frame) -> np.ndarray:
    x0, y0 = int(frame.offset_x), int(frame.offset_y)
    w = round(frame.src_w * frame.scale_x)
    h = round(frame.src_h * frame.scale_y)
    region = canonical[y0 : y0 + h, x0 : x0 + w]
    return region if region.size else canonical


def image_statistics(canonical: np.ndarray, frame: Frame) -> dict[str, np.ndarray | float]:
    """Raw image statistics of a preprocessed (canonical) radiograph."""
    region = _content(canonical, frame)
    hist, _ = np.histogram(region, bins=HIST_BINS, range=(0.0, 1.0))
    hist = hist / max(1, hist.sum())
    lap = cv2.Laplacian(region, cv2.CV_32F, ksize=3)
    med = cv2.medianBlur((region * 255).astype(np.uint8), 3).astype(np.float32) / 255
    # The noise level is a robust spread (MAD) of the median-filter residual; every
    # second row and column give the same figure to ~1e-3 at a quarter of the cost.
    resid = (region - med)[::2, ::2]
    return {
        "hist": hist,
        "sharpness": float(np.log(np.mean(np.abs(lap)) + 1e-6)),
        "noise": float(np.log(np.median(np.abs(resid - np.median(resid))) + 1e-4)),
        "mean": float(region.mean()),
        "contrast": float(region.std()),
    }


@dataclass
class OodReference:
    aspect_log: float
    fov_mm: tuple[float, float] | None  # (height, width) of the training radiographs
    hist_mean: np.ndarray
    stats: dict[str, tuple[float, float]]  # name -> (mean, sd) of training values
    emb_mean: np.ndarray
    emb_precision: np.ndarray
    emb_dist: tuple[float, float]  # mean, sd of held-aside Mahalanobis distances
    shape_high: float  # shape distance that counts as the edge of the training shapes
    extra: dict = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        *,
        stats: list[dict],
        embeddings: np.ndarray,
        calibration_embeddings: np.ndarray,
        aspect: float,
        fov_mm: tuple[float, float] | None,
        shape_high: float,
    ) -> OodReference:
        hist_mean = np.mean([s["hist"] for s in stats], axis=0)
        hist_d = [float(np.abs(s["hist"] - hist_mean).sum()) for s in stats]
        ref = {"histogram": (float(np.mean(hist_d)), float(np.std(hist_d) + 1e-3))}
        for name in ("sharpness", "noise", "mean", "contrast"):
            values = [s[name] for s in stats]
            ref[name] = (float(np.mean(values)), float(np.std(values) + 1e-3))
        emb = np.asarray(embeddings, dtype=np.float64)
        mean = emb.mean(axis=0)
        cov = np.cov(emb - mean, rowvar=False)
        shrink = 0.5  # shrinkage towards a scaled identity: few samples, many dimensions
        cov = (1 - shrink) * cov + shrink * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
        precision = np.linalg.inv(cov)
        cal = [_mahalanobis(e, mean, precision) for e in calibration_embeddings]
        return cls(
            aspect_log=float(np.log(aspect)),
            fov_mm=fov_mm,
            hist_mean=hist_mean,
            stats=ref,
            emb_mean=mean,
            emb_precision=precision,
            emb_dist=(float(np.mean(cal)), float(np.std(cal) + 1e-3)),
            shape_high=shape_high,
        )

    def score(
        self,
        *,
        statistics: dict,
        embedding: np.ndarray,
        frame: Frame,
        spacing_mm: tuple[float, float] | None,
        shape_distance: float | None,
    ) -> tuple[float, dict]:
        comps: dict[str, dict] = {}

        def put(name: str, value: float, score: float) -> None:
            comps[name] = {
                "value": round(float(value), 4),
                "score": round(float(max(0.0, score)), 3),
            }

        aspect = np.log(frame.src_h / frame.src_w)
        put("aspect_ratio", float(np.exp(aspect)), abs(aspect - self.aspect_log) / ASPECT_TOLERANCE)
        if spacing_mm is not None and self.fov_mm is not None:
            fov = (frame.src_h * spacing_mm[0], frame.src_w * spacing_mm[1])
            worst = max(abs(np.log(fov[i] / self.fov_mm[i])) for i in range(2))
            put("field_of_view_mm", fov[0], worst / FOV_TOLERANCE)
        hist_d = float(np.abs(statistics["hist"] - self.hist_mean).sum())
        for name, value in [("histogram", hist_d)] + [
            (n, statistics[n]) for n in ("sharpness", "noise", "mean", "contrast")
        ]:
            mean, sd = self.stats[name]
            put(name, value, abs(value - mean) / sd / Z_LIMIT)
        dist = _mahalanobis(embedding, self.emb_mean, self.emb_precision)
        put("features", dist, (dist - self.emb_dist[0]) / self.emb_dist[1] / Z_LIMIT)
        if shape_distance is not None:
            put("shape", shape_distance, shape_distance / self.shape_high)
        overall = max(c["score"] for c in comps.values())
        return float(overall), comps

    def spreads(self) -> dict[str, float]:
        """The training sd of each z-scored component (a site reference's prior)."""
        out = {name: float(sd) for name, (_, sd) in self.stats.items()}
        out["features"] = float(self.emb_dist[1])
        return out

    def to_dict(self) -> dict:
        return {
            "aspect_log": self.aspect_log,
            "fov_mm": list(self.fov_mm) if self.fov_mm else None,
            "hist_mean": self.hist_mean.tolist(),
            "stats": {k: list(v) for k, v in self.stats.items()},
            "emb_mean": self.emb_mean.tolist(),
            "emb_precision": self.emb_precision.tolist(),
            "emb_dist": list(self.emb_dist),
            "shape_high": self.shape_high,
            "z_limit": Z_LIMIT,
        }

    @classmethod
    def from_dict(cls, data: dict) -> OodReference:
        return cls(
            aspect_log=data["aspect_log"],
            fov_mm=tuple(data["fov_mm"]) if data.get("fov_mm") else None,
            hist_mean=np.asarray(data["hist_mean"]),
            stats={k: tuple(v) for k, v in data["stats"].items()},
            emb_mean=np.asarray(data["emb_mean"]),
            emb_precision=np.asarray(data["emb_precision"]),
            emb_dist=tuple(data["emb_dist"]),
            shape_high=data["shape_high"],
        )


def _mahalanobis(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> float:
    d = np.asarray(x, dtype=np.float64) - mean
    return float(np.sqrt(max(0.0, d @ precision @ d)))


# --- Per-site reference (site onboarding, issue 10) -------------------------------------
# What a site's device changes: geometry, intensity statistics and the coarse network's
# features. The shape component is about the predicted anatomy, not the device: it keeps
# the training reference's score at every site.
LOG_COMPONENTS = {"aspect_ratio": ASPECT_TOLERANCE, "field_of_view_mm": FOV_TOLERANCE}
Z_COMPONENTS = ("histogram", "sharpness", "noise", "mean", "contrast", "features")
SITE_MIN_CASES = 20  # fewer reviewed cases: no site reference, the training one applies
SITE_PRIOR_CASES = 5.0  # weight of the training sd in a site sd, in pseudo-cases
SITE_COVERAGE = 0.9  # share of the site's own cases that pass (split-conformal, LOO)


@dataclass
class SiteOodReference:
    """Where one site's radiographs lie, fitted from the OOD details (component values)
    stored with its own reviewed cases. Scores read like the training reference's: a
    component scores 1 at ``Z_LIMIT`` site sds (or the fixed log tolerance for aspect
    ratio and field of view) times ``limit``; the overall score is the largest."""

    centres: dict[str, float]  # component -> site mean (log for LOG_COMPONENTS)
    scales: dict[str, float]  # component -> shrunk site sd (the tolerance for LOG_COMPONENTS)
    limit: float  # >= 1: the leave-one-out quantile of the site's own raw scores
    n: int
    coverage: float
    prior_cases: float
    loo_scores: list[float] = field(default_factory=list)  # sorted, for the proposal page

    @classmethod
    def fit(
        cls,
        *,
        details: list[dict],
        prior_sd: dict[str, float],
        coverage: float = SITE_COVERAGE,
        prior_cases: float = SITE_PRIOR_CASES,
        min_cases: int = SITE_MIN_CASES,
    ) -> SiteOodReference:
        """``details``: ``EnginePrediction.ood_details`` of the site's cases; ``prior_sd``:
        ``OodReference.spreads()`` of the model's training reference.

        Rule: centre = the site's mean; sd^2 = (k * sd_train^2 + sum of squared
        deviations) / (k + n - 1), the site's variance shrunk towards the training one
        with k = ``prior_cases`` pseudo-cases. The limit is the ceil((n + 1) * coverage)-th
        smallest leave-one-out score (each case scored by a reference fitted on the other
        n - 1), at least 1, so a new case like the site's passes with probability
        >= coverage (exchangeability) and the limit is never scored on its own fit."""
        n = len(details)
        if n < max(min_cases, 2):
            raise ValueError(f"{n} cases: a site reference needs at least {min_cases}")
        rank = math.ceil((n + 1) * coverage)
        if not 0 < coverage < 1 or rank > n:
            raise ValueError(f"coverage {coverage} needs more than {n} cases")
        centres, scales = _site_moments(details, prior_sd, prior_cases)
        loo = []
        for i in range(n):
            c, s = _site_moments(details[:i] + details[i + 1 :], prior_sd, prior_cases)
            loo.append(max(_site_raw(details[i], c, s).values(), default=float("inf")))
        loo.sort()
        return cls(
            centres=centres, scales=scales, limit=max(1.0, float(loo[rank - 1])), n=n,
            coverage=coverage, prior_cases=prior_cases,
            loo_scores=[round(v, 3) for v in loo],
        )  # fmt: skip

    def score(self, details: dict) -> tuple[float, dict]:
        """(overall, components) of one case's ``ood_details``; components the site does
        not model (shape, or a field of view the site's cases never had) keep the
        training reference's score. No details at all: NaN (out of distribution)."""
        raw = _site_raw(details, self.centres, self.scales)
        comps: dict[str, dict] = {}
        for name, comp in (details or {}).items():
            if not isinstance(comp, dict) or "score" not in comp:
                continue
            if name in raw:
                score, ref = raw[name] / self.limit, "site"
            else:
                score, ref = float(comp["score"]), "training"
            comps[name] = {"value": comp.get("value"), "score": round(score, 3), "reference": ref}
        if not comps:
            return float("nan"), {}
        return float(max(c["score"] for c in comps.values())), comps

    def to_dict(self) -> dict:
        return {
            "centres": self.centres, "scales": self.scales, "limit": self.limit, "n": self.n,
            "coverage": self.coverage, "prior_cases": self.prior_cases,
            "loo_scores": self.loo_scores, "z_limit": Z_LIMIT,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> SiteOodReference:
        return cls(
            centres={k: float(v) for k, v in data["centres"].items()},
            scales={k: float(v) for k, v in data["scales"].items()},
            limit=float(data["limit"]), n=int(data["n"]), coverage=float(data["coverage"]),
            prior_cases=float(data["prior_cases"]), loo_scores=list(data.get("loo_scores", [])),
        )  # fmt: skip


def _site_value(name: str, details: dict) -> float | None:
    comp = (details or {}).get(name)
    value = comp.get("value") if isinstance(comp, dict) else None
    if value is None or not np.isfinite(value):
        return None
    if name in LOG_COMPONENTS:
        return float(np.log(value)) if value > 0 else None
    return float(value)


def _site_moments(
    details: list[dict], prior_sd: dict[str, float], prior_cases: float
) -> tuple[dict[str, float], dict[str, float]]:
    centres, scales = {}, {}
    for name in (*LOG_COMPONENTS, *Z_COMPONENTS):
        values = [v for v in (_site_value(name, d) for d in details) if v is not None]
        if len(values) < 2:
            continue  # e.g. no spacing: the site never had a field of view
        v = np.asarray(values)
        centres[name] = float(v.mean())
        if name in LOG_COMPONENTS:
            scales[name] = LOG_COMPONENTS[name]
            continue
        ss = float(((v - v.mean()) ** 2).sum())
        prior = prior_sd.get(name)
        k = prior_cases if prior is not None else 0.0
        var = (k * (prior or 0.0) ** 2 + ss) / (k + len(v) - 1)
        scales[name] = float(np.sqrt(var) + 1e-3)
    return centres, scales


def _site_raw(details: dict, centres: dict, scales: dict) -> dict[str, float]:
    """Unscaled site scores (1 = Z_LIMIT site sds, or the log tolerance) per component."""
    out = {}
    for name, centre in centres.items():
        value = _site_value(name, details)
        if value is None:
            continue
        dev = abs(value - centre) / scales[name]
        out[name] = dev if name in LOG_COMPONENTS else dev / Z_LIMIT
    return out
