"""Per-landmark confidence: a small logistic model over disagreement features.

Features (chosen by measurement, see docs/benchmarks.md): how far the fine stage
moved from the coarse estimate, how much the fine stage's answer moves under small
test-time shifts of its crop, and the heatmap peak values and spread. The model is
fitted on the calibration split (cases the networks never trained on) to give
P(radial error <= 2 mm); that probability is the confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES = ("coarse_fine_mm", "tta_spread_mm", "fine_peak", "coarse_peak", "fine_spread_mm")
N_LANDMARK_TERMS = 7


def design_matrix(features: np.ndarray, landmark_index: np.ndarray) -> np.ndarray:
    """(n, F) raw features + landmark ids -> (n, D) design matrix with intercepts per landmark."""
    f = np.asarray(features, dtype=np.float64)
    cols = [
        np.log1p(f[:, 0]),
        np.log1p(f[:, 1]),
        np.clip(f[:, 2], 0, 2),
        np.clip(f[:, 3], 0, 2),
        np.log1p(f[:, 4]),
    ]
    onehot = np.eye(N_LANDMARK_TERMS)[np.asarray(landmark_index, dtype=int)]
    return np.column_stack([*cols, onehot])


@dataclass
class ConfidenceModel:
    weights: np.ndarray  # (D,)
    feature_mean: np.ndarray
    feature_std: np.ndarray
    # Platt scaling of the ridge model's logit (a, b): the ridge penalty shrinks the
    # logits towards 0; this monotone map (fitted on out-of-fold logits) restores
    # calibrated probabilities without changing the ranking.
    platt: tuple[float, float] = (1.0, 0.0)

    @classmethod
    def fit(
        cls, features: np.ndarray, landmark_index: np.ndarray, ok: np.ndarray, *, ridge: float = 1.0
    ) -> ConfidenceModel:
        """Ridge-regularised logistic regression by Newton steps (ok = error <= 2 mm)."""
        x = design_matrix(features, landmark_index)
        n_cont = x.shape[1] - N_LANDMARK_TERMS
        mean = np.zeros(x.shape[1])
        std = np.ones(x.shape[1])
        mean[:n_cont] = x[:, :n_cont].mean(axis=0)
        std[:n_cont] = x[:, :n_cont].std(axis=0) + 1e-6
        z = (x - mean) / std
        y = np.asarray(ok, dtype=np.float64)
        w = np.zeros(z.shape[1])
        penalty = ridge * np.eye(z.shape[1])
        for _ in range(50):
            p = 1 / (1 + np.exp(-(z @ w)))
            grad = z.T @ (p - y) + penalty @ w
            hess = z.T @ (z * (p * (1 - p))[:, None]) + penalty
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(weights=w, feature_mean=mean, feature_std=std)

    def logit(self, features: np.ndarray, landmark_index: np.ndarray) -> np.ndarray:
        z = (design_matrix(features, landmark_index) - self.feature_mean) / self.feature_std
        return z @ self.weights

    def predict(self, features: np.ndarray, landmark_index: np.ndarray) -> np.ndarray:
        a, b = self.platt
        return 1 / (1 + np.exp(-(a * self.logit(features, landmark_index) + b)))

    def with_platt(self, logits: np.ndarray, ok: np.ndarray) -> ConfidenceModel:
        """Fit (a, b) of sigmoid(a * logit + b) to outcomes by Newton steps."""
        x = np.column_stack([np.asarray(logits, dtype=np.float64), np.ones(len(logits))])
        y = np.asarray(ok, dtype=np.float64)
        w = np.array([1.0, 0.0])
        for _ in range(50):
            p = 1 / (1 + np.exp(-(x @ w)))
            grad = x.T @ (p - y) + 1e-3 * w
            hess = x.T @ (x * (p * (1 - p))[:, None]) + 1e-3 * np.eye(2)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-9:
                break
        return ConfidenceModel(
            self.weights, self.feature_mean, self.feature_std, (float(w[0]), float(w[1]))
        )

    def to_dict(self) -> dict:
        return {
            "features": list(FEATURES),
            "weights": self.weights.tolist(),
            "feature_mean": self.feature_mean.tolist(),
            "feature_std": self.feature_std.tolist(),
            "platt": list(self.platt),
            "target": "P(radial error <= 2 mm)",
        }

    @classmethod
    def from_dict(cls, data: dict) -> ConfidenceModel:
        return cls(
            weights=np.asarray(data["weights"], dtype=np.float64),
            feature_mean=np.asarray(data["feature_mean"], dtype=np.float64),
            feature_std=np.asarray(data["feature_std"], dtype=np.float64),
            platt=tuple(data.get("platt", (1.0, 0.0))),
        )
