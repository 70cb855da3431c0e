"""Out-of-distribution guard: how unlike the training radiographs an input is.

Each component is turned into a score where 1.0 is the edge of what the training
radiographs show (``Z_LIMIT`` standard deviations, or a fixed tolerance where the
training data do not vary); the overall ``ood_score`` is the largest component.
A score above 1 means "do not trust the confidences on this image".
"""

from __future__ import annotations

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
