"""Error prediction: per landmark, P(radial error > 2 mm) and P(> 4 mm), from signals
that see gross failures (crossval.SIGNALS): coarse-fine disagreement, test-time shift
spread, heatmap peaks and spread, the landmark's shape residual (where the other six
put it) and its worst pairwise-distance z-score.

Two ridge-regularised logistic models (one per tolerance) share the design: the
log/clipped signals plus an intercept per landmark. A case's risk is
``1 - prod(1 - P(> 4 mm))`` over its seven landmarks: the probability that any
landmark is grossly off, which is what routing must keep out of the released set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mahtqa.cephalometry.landmarks import N_LANDMARKS

TOLERANCES_MM = (2.0, 4.0)
N_SIGNALS = 7
# signal order (crossval.SIGNALS): coarse_fine_mm, tta_spread_mm, fine_peak, coarse_peak,
# fine_spread_mm, shape_residual_mm, pair_z, and with test-time views
# (inference.LandmarkPredictor.views) view_spread_mm and far_mass
N_VIEW_SIGNALS = N_SIGNALS + 2
_CLIP = (2, 3, 8)  # the peaks and the far mass; every other is a distance or z: log1p


def design(signals: np.ndarray, landmark: np.ndarray) -> np.ndarray:
    """(n, s) raw signals (s = 7, or 9 with the views) + landmark ids -> (n, s + 7)
    design matrix."""
    f = np.asarray(signals, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] not in (N_SIGNALS, N_VIEW_SIGNALS):
        raise ValueError(
            f"expected (n, {N_SIGNALS}) or (n, {N_VIEW_SIGNALS}) signals, got {f.shape}"
        )
    cols = np.empty_like(f)
    for i in range(f.shape[1]):
        cols[:, i] = np.clip(f[:, i], 0, 2) if i in _CLIP else np.log1p(np.clip(f[:, i], 0, None))
    onehot = np.eye(N_LANDMARKS)[np.asarray(landmark, dtype=int)]
    return np.column_stack([cols, onehot])


def _fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    w = np.zeros(x.shape[1])
    penalty = ridge * np.eye(x.shape[1])
    n = x.shape[1] - N_LANDMARKS
    penalty[n:, n:] *= 0.1  # intercepts: lightly penalised
    for _ in range(60):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + penalty @ w
        hess = (x * (p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


@dataclass
class ErrorModel:
    mean: np.ndarray  # (7,) or (9,): of the continuous design columns
    std: np.ndarray
    weights: dict[float, np.ndarray]  # tolerance mm -> (14,) or (16,) weights
    ridge: float = 1.0

    @classmethod
    def fit(cls, signals: np.ndarray, landmark: np.ndarray, errors_mm: np.ndarray,
            *, ridge: float = 1.0) -> ErrorModel:  # fmt: skip
        x = design(signals, landmark)
        n = x.shape[1] - N_LANDMARKS
        mean = x[:, :n].mean(axis=0)
        std = x[:, :n].std(axis=0) + 1e-6
        z = x.copy()
        z[:, :n] = (x[:, :n] - mean) / std
        e = np.asarray(errors_mm, dtype=float)
        weights = {t: _fit_logistic(z, (e > t).astype(float), ridge) for t in TOLERANCES_MM}
        return cls(mean, std, weights, ridge)

    def probability(
        self, signals: np.ndarray, landmark: np.ndarray, tolerance: float
    ) -> np.ndarray:
        x = design(signals, landmark)
        if x.shape[1] - N_LANDMARKS != len(self.mean):
            raise ValueError(f"this error model takes {len(self.mean)} signals per landmark")
        n = len(self.mean)
        x[:, :n] = (x[:, :n] - self.mean) / self.std
        return 1 / (1 + np.exp(-np.clip(x @ self.weights[tolerance], -30, 30)))

    def probabilities(self, signals_7x7: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per landmark (P(> 2 mm), P(> 4 mm)); the second never above the first (a 4 mm
        miss is a 2 mm miss too; the two models are fitted apart)."""
        idx = np.arange(N_LANDMARKS)
        p2 = self.probability(signals_7x7, idx, 2.0)
        return p2, np.minimum(self.probability(signals_7x7, idx, 4.0), p2)

    def case_risk(self, signals_7x7: np.ndarray) -> float:
        """P(any landmark > 4 mm) for one case's (7, 7) signal matrix."""
        p4 = self.probabilities(signals_7x7)[1]
        return float(1 - np.prod(1 - p4))

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "ridge": self.ridge,
                "weights": {str(t): w.tolist() for t, w in self.weights.items()}}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorModel:
        return cls(
            np.asarray(data["mean"], dtype=float), np.asarray(data["std"], dtype=float),
            {float(t): np.asarray(w, dtype=float) for t, w in data["weights"].items()},
            float(data.get("ridge", 1.0)),
        )  # fmt: skip


def stack(cases: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Records (crossval's ``cases``) -> per-landmark signals, landmark ids, errors, case ids."""
    signals = np.concatenate([np.asarray(c["signals"], dtype=float) for c in cases])
    landmark = np.tile(np.arange(N_LANDMARKS), len(cases))
    errors = np.concatenate([np.asarray(c["errors_mm"], dtype=float) for c in cases])
    group = np.repeat(np.arange(len(cases)), N_LANDMARKS)
    return signals, landmark, errors, group
